"""Real-time latency benchmark of SAM2-compatible predictors, FastSAM2 and SAM2.1 side by side.

Every task is written once against the SAM2 predictor API (``set_image`` / ``predict``,
``init_state`` / ``add_new_mask`` / ``propagate_in_video``), so the same code times FastSAM2's
predictors and SAM2's. A :class:`Side` bundles one model's predictors; when two sides are given,
their timed calls alternate (image tasks: iteration by iteration, VOS: frame by frame, the order
flipping every step) so machine load and thermal drift hit both equally.

What a latency covers (see :data:`STAGES`; the model itself is always included):

- ``decode``: the frame arrives as JPEG bytes and is decoded (OpenCV) inside the timed region;
- ``preprocess``: the predictor's resize + normalisation of the uint8 frame;
- ``postprocess``: the masks resized back to the input resolution.

An excluded stage is not removed from the predictor (that would change what it computes): the
functions that implement it are wrapped with a clock (:class:`StageClock`, device-synchronised)
and their time is subtracted from the call's. A predictor without a known hook for a stage keeps
it included, and the JSON says so.

VOS input: both sides read the same lazy frame sequence, so each timed frame pays its own
decode (if included), preprocessing, image encoder and masks at input resolution. SAM2's
``init_state`` only takes JPEG folders / mp4 files, decoded and resized whole up front; it is
handed an equivalent lazy list instead (:class:`_SAM2Frames`).

Peak memory: on CUDA, ``max_memory_allocated`` above what was allocated when the call started
(the task's working memory); on CPU, how much the calls raised the process's peak RSS (a
high-water mark: 0 once an earlier, bigger call set it). GPU utilisation: NVML samples over the
whole interleaved block (both sides together), omitted without ``pynvml`` or a GPU.
"""
import importlib.metadata
import platform
import resource
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from rich.progress import track

from seg.utils.atomic_io import atomic_open, atomic_write_json
from seg.utils.precision import autocast

TASKS = ('interactive_new_frame', 'reprompt', 'vos_1obj', 'vos_8obj', 'panoptic')
STAGES = ('decode', 'preprocess', 'postprocess')
DEFAULT_SIZES = ((1920, 1080), (1280, 720), (854, 480))
VOS_OBJECTS = {'vos_1obj': 1, 'vos_8obj': 8}
TRACE_POINTS = 200  # samples of the held-memory trace kept in the JSON / plotted
# calls from which a run is a stream: a progress bar, and its held memory is also plotted
MEMORY_PLOT_MIN_CALLS = 100

Hook = Tuple[Any, str]  # (object, attribute name of the function that implements a stage)


@dataclass
class Side:
    """One model under test, seen through SAM2-compatible predictors.

    Args:
        name: label in the table, JSON and plot.
        image_predictor: ``set_image(rgb)`` + ``predict(point_coords, point_labels, ...)``.
        video_predictor: ``add_new_mask`` + ``propagate_in_video`` over a state from ``init_video``.
        init_video: frames (a sequence of uint8 RGB arrays, read lazily) -> video state.
        encoders: the image encoder's modules (``--compile`` compiles them).
        panoptic: rgb -> result, or None where the model has no panoptic task.
        hooks: per stage, the functions implementing it (for exclusion by subtraction); module
            attributes work too, the functions being looked up at call time.
    """
    name: str
    image_predictor: Any
    video_predictor: Any
    init_video: Callable[[Sequence[np.ndarray]], Any]
    encoders: List[torch.nn.Module]
    panoptic: Optional[Callable[[np.ndarray], Any]] = None
    hooks: Dict[str, List[Hook]] = field(default_factory=dict)


@dataclass
class BenchSettings:
    device: str = 'cpu'
    precision: str = 'fp32'
    include: Tuple[str, ...] = ('preprocess', 'postprocess')
    warmup: int = 2
    iters: int = 10
    vos_warmup: int = 7
    vos_frames: Optional[int] = None  # None: 1 prompt frame + vos_warmup + iters
    compile: bool = False
    cuda_graphs: bool = False


def parse_sizes(text: str) -> List[Tuple[int, int]]:
    """``'1920x1080,854x480'`` -> ``[(1920, 1080), (854, 480)]`` (width x height)."""
    sizes = []
    for item in text.split(','):
        try:
            w, h = (int(v) for v in item.lower().split('x'))
        except ValueError:
            raise ValueError(f'--sizes: {item!r} is not WIDTHxHEIGHT (e.g. 1280x720)') from None
        if w < 16 or h < 16:
            raise ValueError(f'--sizes: {item!r} is smaller than 16x16')
        sizes.append((w, h))
    return sizes


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def compile_encoders(sides: Sequence[Side], settings: BenchSettings) -> List[str]:
    """Apply ``--compile`` / ``--cuda-graphs`` to each side's image encoder; returns notes.

    CUDA graphs come from ``torch.compile(mode='reduce-overhead')`` (static shapes per input size,
    re-captured per size during warm-up)."""
    notes = []
    graphs = settings.cuda_graphs and settings.device.startswith('cuda')
    if settings.cuda_graphs and not graphs:
        notes.append('--cuda-graphs is a no-op on CPU (CUDA graphs need a GPU)')
    if settings.compile or graphs:
        mode = 'reduce-overhead' if graphs else None
        for side in sides:
            for module in side.encoders:
                module.compile(mode=mode)
        notes.append(f'image encoders compiled with torch.compile(mode={mode!r}); '
                     'the warm-up absorbs compilation')
    return notes


class StageClock:
    """Wraps the functions of excluded stages so their (synchronised) time can be subtracted;
    ``restore`` puts the originals back. Nested hooked calls are counted once (the outer one)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.excluded_s = 0.0
        self._depth = 0
        self._patched: List[Tuple[Any, str, Any]] = []

    def install(self, side: Side, include: Sequence[str]) -> Dict[str, str]:
        """Wrap ``side``'s hooks of the stages not in ``include``; returns what each stage is."""
        status = {'model': 'included'}
        for stage in STAGES:
            if stage in include:
                status[stage] = 'included'
            elif stage == 'decode':
                status[stage] = 'excluded (frames given decoded)'
            elif not side.hooks.get(stage):
                status[stage] = 'included (no hook to exclude it for this predictor)'
            else:
                for obj, attr in side.hooks[stage]:
                    original = getattr(obj, attr)
                    self._patched.append((obj, attr, obj.__dict__.get(attr)))
                    setattr(obj, attr, self._wrap(original))
                status[stage] = 'excluded (subtracted: ' + ', '.join(
                    f'{getattr(obj, "__name__", type(obj).__name__)}.{attr}'  # module or object
                    for obj, attr in side.hooks[stage]) + ')'
        return status

    def restore(self) -> None:
        for obj, attr, own in reversed(self._patched):
            if own is None:  # the attribute came from the class: drop the instance override
                delattr(obj, attr)
            else:
                setattr(obj, attr, own)
        self._patched.clear()

    def _wrap(self, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            sync(self.device)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                sync(self.device)
                self.excluded_s += time.perf_counter() - start
                self._depth -= 1
        return timed


class FrameSource:
    """Synthetic video at one size: textured background, ``num_objects`` ellipses drifting right.

    Frames are made once; ``get`` returns the uint8 RGB frame, decoded from its JPEG bytes when
    decode is included (so decoding is timed, reading from disk is not). A video longer than
    ``cycle`` frames repeats its first ``cycle`` (the objects jump back to their start), so a
    10 000-frame stream holds ``cycle`` frames in memory, not 10 000."""

    def __init__(self, width: int, height: int, num_frames: int, decode: bool,
                 num_objects: int = 8, seed: int = 0, cycle: int = 200) -> None:
        if num_frames < 1 or cycle < 1:
            raise ValueError(f'FrameSource: need num_frames >= 1 and cycle >= 1, got {num_frames} '
                             f'and {cycle}')
        rng = np.random.default_rng(seed)
        self.width, self.height, self.decode = width, height, decode
        self.num_frames = num_frames
        # low-frequency texture: a noise image upsampled, so JPEG and the model see structure
        base = cv2.resize(rng.integers(0, 256, (max(height // 16, 2), max(width // 16, 2), 3),
                                       dtype=np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
        self.centers = [(int(width * (0.15 + 0.7 * ((i % 4) / 3))), int(height * (0.3 + 0.4 * (i // 4))))
                        for i in range(num_objects)]
        self.axes = (max(width // 20, 4), max(height // 12, 4))
        colours = rng.integers(0, 256, (num_objects, 3)).tolist()
        self.frames: List[np.ndarray] = []
        self.jpegs: List[bytes] = []
        for t in range(min(num_frames, cycle)):
            frame = base.copy()
            for (cx, cy), colour in zip(self.centers, colours):
                cv2.ellipse(frame, (cx + t * max(width // 200, 1), cy), self.axes, 0, 0, 360, colour, -1)
            self.frames.append(frame)
            ok, buf = cv2.imencode('.jpg', frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
            if not ok:
                raise RuntimeError(f'FrameSource: JPEG encoding of a {width}x{height} frame failed')
            self.jpegs.append(buf.tobytes())

    def __len__(self) -> int:
        return self.num_frames

    def get(self, index: int) -> np.ndarray:
        if not 0 <= index < self.num_frames:
            raise IndexError(f'FrameSource: frame {index} of a {self.num_frames}-frame video')
        index %= len(self.frames)
        if not self.decode:
            return self.frames[index]
        bgr = cv2.imdecode(np.frombuffer(self.jpegs[index], np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def object_masks(self, count: int) -> List[np.ndarray]:
        """First-frame masks of the first ``count`` objects (bool, H x W)."""
        masks = []
        for cx, cy in self.centers[:count]:
            mask = np.zeros((self.height, self.width), np.uint8)
            cv2.ellipse(mask, (cx, cy), self.axes, 0, 0, 360, 1, -1)
            masks.append(mask.astype(bool))
        return masks

    def click(self, step: int) -> np.ndarray:
        """One positive click inside an object, a different object/offset at each step."""
        cx, cy = self.centers[step % len(self.centers)]
        dx = (step // len(self.centers)) % 3 - 1
        return np.array([[cx + dx * self.axes[0] // 3, cy]], dtype=np.float32)


class LazyFrames(Sequence):
    """The video as a read-only sequence; a frame is produced (decoded) only when accessed."""

    def __init__(self, source: FrameSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.source.get(i) for i in range(*index.indices(len(self)))]
        return self.source.get(index)


class NvmlSampler:
    """Mean GPU utilisation over a block, sampled by NVML in a thread (None without pynvml/GPU)."""

    def __init__(self, device: str, period_s: float = 0.05) -> None:
        self.handle, self.samples, self.period_s = None, [], period_s
        if not device.startswith('cuda'):
            return
        try:
            import pynvml
            pynvml.nvmlInit()
            index = torch.device(device).index or 0
            self.handle, self._nvml = pynvml.nvmlDeviceGetHandleByIndex(index), pynvml
        except Exception:  # pynvml missing or no NVML driver: utilisation is omitted
            self.handle = None

    def __enter__(self) -> 'NvmlSampler':
        self._stop = threading.Event()
        if self.handle is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.samples.append(self._nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.handle is not None:
            self._thread.join()

    @property
    def mean(self) -> Optional[float]:
        return float(np.mean(self.samples)) if self.samples else None


def held_memory_mb(device: str) -> float:
    """Memory held between calls: CUDA ``memory_allocated``; CPU the process's current RSS."""
    if device.startswith('cuda'):
        return torch.cuda.memory_allocated() / 2 ** 20
    with open('/proc/self/statm') as f:  # pages: size resident shared ...
        return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20


class Recorder:
    """Per-side latencies, peak memory and the memory held after each timed call (a stream's
    memory must stay flat) of one task at one size."""

    def __init__(self, settings: BenchSettings, clock: StageClock) -> None:
        self.settings, self.clock = settings, clock
        self.times_ms: Dict[str, List[float]] = {}
        self.peak_mb: Dict[str, float] = {}
        self.held_mb: Dict[str, List[float]] = {}

    def call(self, side: Side, fn: Callable[[], Any], timed: bool) -> Any:
        device = self.settings.device
        cuda = device.startswith('cuda')
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        else:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if self.settings.cuda_graphs and cuda:
            # a new step: outputs of earlier graph replays (cached features) may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        sync(device)
        self.clock.excluded_s = 0.0
        start = time.perf_counter()
        with torch.inference_mode(), autocast(device, self.settings.precision):
            out = fn()
        sync(device)
        elapsed = time.perf_counter() - start - self.clock.excluded_s
        if timed:
            self.times_ms.setdefault(side.name, []).append(elapsed * 1e3)
            # CUDA: the call's working memory above what was allocated before it; CPU: how much the
            # call raised the process's peak RSS (ru_maxrss is a high-water mark, in KiB on Linux)
            grown = (torch.cuda.max_memory_allocated() - before) / 2 ** 20 if cuda else \
                (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
            self.peak_mb[side.name] = max(self.peak_mb.get(side.name, 0.0), grown)
            self.held_mb.setdefault(side.name, []).append(held_memory_mb(device))
        return out


def alternate(sides: Sequence[Side], step: int) -> Sequence[Side]:
    """Side order of one interleaved step: flipped every step so neither always runs first."""
    return sides if step % 2 == 0 else list(reversed(sides))


def run_image_task(task: str, sides: Sequence[Side], source: FrameSource, rec: Recorder) -> None:
    """``interactive_new_frame``: set_image + one click on a new frame per call;
    ``reprompt``: one new click on the frame set once before timing."""
    if task == 'reprompt':
        for side in sides:
            rec.call(side, lambda s=side: s.image_predictor.set_image(source.frames[0]), timed=False)
    total = rec.settings.warmup + rec.settings.iters
    for step in range(total):
        click = source.click(step)
        frame_index = step % len(source)

        def new_frame(side: Side) -> Any:
            side.image_predictor.set_image(source.get(frame_index))
            return side.image_predictor.predict(point_coords=click, point_labels=np.ones(1, np.int64),
                                                multimask_output=True)

        def reprompt(side: Side) -> Any:
            return side.image_predictor.predict(point_coords=click, point_labels=np.ones(1, np.int64),
                                                multimask_output=True)

        run = new_frame if task == 'interactive_new_frame' else reprompt
        for side in alternate(sides, step):
            rec.call(side, lambda s=side: run(s), timed=step >= rec.settings.warmup)


def run_vos_task(num_objects: int, sides: Sequence[Side], source: FrameSource, rec: Recorder) -> None:
    """Per-frame propagation with ``num_objects`` first-frame masks. Frame 0 (the prompt frame)
    and the next ``vos_warmup`` frames are untimed, so the timed frames see a full memory bank."""
    streams: Dict[str, Iterator] = {}
    for side in sides:
        def start(s: Side = side) -> Iterator:
            state = s.init_video(LazyFrames(source))
            for obj_id, mask in enumerate(source.object_masks(num_objects), start=1):
                s.video_predictor.add_new_mask(state, frame_idx=0, obj_id=obj_id, mask=mask)
            stream = iter(s.video_predictor.propagate_in_video(state))
            next(stream)  # the prompt frame
            return stream
        streams[side.name] = rec.call(side, start, timed=False)
    steps = range(len(source) - 1)
    if len(source) > MEMORY_PLOT_MIN_CALLS:  # a long stream (thousands of frames) shows progress
        steps = track(steps, description='VOS frames')
    for step in steps:
        for side in alternate(sides, step):
            rec.call(side, lambda s=side: next(streams[s.name]), timed=step >= rec.settings.vos_warmup)
    for stream in streams.values():
        stream.close()


def run_panoptic_task(sides: Sequence[Side], source: FrameSource, rec: Recorder) -> None:
    for step in range(rec.settings.warmup + rec.settings.iters):
        frame_index = step % len(source)
        for side in alternate(sides, step):
            rec.call(side, lambda s=side: s.panoptic(source.get(frame_index)),
                     timed=step >= rec.settings.warmup)


SAM2_CONFIGS = {'t': 'tiny', 's': 'small', 'b+': 'base_plus', 'l': 'large'}


class _SAM2Frames(Sequence):
    """A lazy frame list for SAM2's video state: each frame is preprocessed when SAM2 first reads
    it (with the image predictor's transforms), instead of SAM2's loader resizing the whole video
    up front, so a SAM2 frame costs decode + preprocessing + model like a FastSAM2 frame does."""

    def __init__(self, frames: Sequence[np.ndarray], transforms: Callable, device: torch.device
                 ) -> None:
        self.frames, self.transforms, self.device = frames, transforms, device

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transforms(self.frames[index]).to(self.device)


def build_sam2_side(variant: str, device: str, image_size: int = 1024) -> Side:
    """SAM2.1 (random weights) of size ``variant`` behind SAM2's own image and video predictors,
    one model shared by both. ``image_size`` below 1024 is for quick CPU runs (tests) only."""
    import sam2.sam2_video_predictor as sam2_video
    from sam2.build_sam import build_sam2_video_predictor
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    from sam2.utils.transforms import SAM2Transforms
    if variant not in SAM2_CONFIGS:
        raise ValueError(f'--compare-sam2: unknown SAM2.1 size {variant!r}, choose from {list(SAM2_CONFIGS)}')
    if image_size % 64:
        raise ValueError(f'SAM2 image size must be a multiple of 64, got {image_size}')
    overrides = [] if image_size == 1024 else [f'++model.image_size={image_size}']
    model = build_sam2_video_predictor(f'configs/sam2.1/sam2.1_hiera_{variant}.yaml', None,
                                       device=device, hydra_overrides_extra=overrides)
    class Transforms(SAM2Transforms):
        """SAM2's transforms with the frame preprocessing as a named method, so it can be hooked
        (``SAM2Transforms`` defines ``__call__`` itself, which an instance attribute cannot wrap)."""

        def __call__(self, x: np.ndarray) -> torch.Tensor:
            return self.preprocess(x)

        def preprocess(self, x: np.ndarray) -> torch.Tensor:
            return super().__call__(x)

    image_predictor = SAM2ImagePredictor(model)
    # the predictor hard-codes the feature sizes of a 1024 input (strides 4, 8, 16)
    image_predictor._bb_feat_sizes = [(image_size // s, image_size // s) for s in (4, 8, 16)]
    # SAM2ImagePredictor's defaults: no mask threshold shift, no hole / sprinkle removal
    transforms = image_predictor._transforms = Transforms(image_size, mask_threshold=0.0)

    def init_video(frames: Sequence[np.ndarray]) -> Dict[str, Any]:
        height, width = frames[0].shape[:2]
        images = _SAM2Frames(frames, transforms, model.device)
        # SAM2's init_state only reads JPEG folders / mp4 files (all frames, up front): hand it
        # the lazy list through the loader it calls
        loader = sam2_video.load_video_frames
        sam2_video.load_video_frames = lambda *args, **kwargs: (images, height, width)
        try:
            return model.init_state(video_path=None)
        finally:
            sam2_video.load_video_frames = loader

    return Side(name=f'SAM2.1-{variant}', image_predictor=image_predictor, video_predictor=model,
                init_video=init_video, encoders=[model.image_encoder],
                hooks=dict(preprocess=[(transforms, 'preprocess')],
                           postprocess=[(transforms, 'postprocess_masks'),
                                        (model, '_get_orig_video_res_output')]))


def build_fastsam2_side(config: str, checkpoint: Optional[str], device: str,
                        image_size: Optional[int]) -> Side:
    """A FastSAM2 / RapSAM config behind ``FastSAM2ImagePredictor`` and ``FastSAM2VideoPredictor``
    (one model shared by both) and ``SegPredictor.panoptic``, processing at ``image_size`` (longer
    side; None: as given). The backbone's ``pretrained`` file is never read: the weights are
    ``checkpoint``'s, or random."""
    from mmengine.config import Config

    import seg.apis.image_predictor as image_api
    import seg.models.detectors.rapsam as rapsam
    from seg.apis.predictor import SegPredictor
    from seg.apis.video_io import FrameListSource
    from seg.apis.video_predictor import FastSAM2VideoPredictor
    if not Path(config).is_file():
        raise FileNotFoundError(f'--config: file not found: {config}')
    cfg = Config.fromfile(config)
    if 'pretrained' in cfg.model.backbone:
        cfg.model.backbone.pretrained = None
    model = image_api.build_model(cfg, checkpoint, device, image_size)
    video_predictor = FastSAM2VideoPredictor(model)
    panoptic = SegPredictor(model)

    def init_video(frames: Sequence[np.ndarray]) -> Any:
        # a VideoSource over the lazy sequence (a plain list would be decoded up front)
        return video_predictor.init_state(FrameListSource(frames))

    return Side(name=f'FastSAM2 ({Path(config).stem})',
                image_predictor=image_api.FastSAM2ImagePredictor(model),
                video_predictor=video_predictor, init_video=init_video,
                encoders=[model.backbone, model.neck],
                # SegPredictor takes the BGR order mmcv reads
                panoptic=lambda rgb: panoptic.panoptic(rgb[..., ::-1]),
                hooks=dict(preprocess=[(model.data_preprocessor, 'forward')],
                           postprocess=[(rapsam, 'to_output_res'), (image_api, 'to_output_res'),
                                        (model.panoptic_fusion_head, 'predict_grid')]))


def latency_stats(times_ms: Sequence[float]) -> Dict[str, float]:
    t = np.asarray(times_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(t, [50, 90, 99])
    return dict(n=int(t.size), mean_ms=float(t.mean()), p50_ms=float(p50), p90_ms=float(p90),
                p99_ms=float(p99), fps=float(1e3 / t.mean()))


def held_memory_stats(held_mb: Sequence[float], device: str) -> Dict[str, Any]:
    """The memory held after the timed calls: at the first and the last call, its maximum, the
    growth from the first call's to the maximum (over a long VOS stream: flat memory is ~0), and
    a trace of ``(timed call, MB)`` at most ``TRACE_POINTS`` long (the last call included)."""
    step = max(1, len(held_mb) // TRACE_POINTS)
    calls = list(range(0, len(held_mb), step))
    if calls[-1] != len(held_mb) - 1:
        calls.append(len(held_mb) - 1)
    return dict(held_first_mb=held_mb[0], held_last_mb=held_mb[-1], held_max_mb=max(held_mb),
                held_growth_mb=max(held_mb) - held_mb[0],
                held_trace=[[i, held_mb[i]] for i in calls],
                held_kind='cuda memory_allocated after the call' if device.startswith('cuda')
                else 'process RSS after the call')


def run_benchmark(sides: Sequence[Side], tasks: Sequence[str], sizes: Sequence[Tuple[int, int]],
                  settings: BenchSettings, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run every task at every size for every side; returns the rows and ratios (no I/O).

    The first side is the reference of the ratio ``other latency / first latency``."""
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise ValueError(f'unknown task(s) {unknown}; choose from {list(TASKS)}')
    bad_stages = sorted(set(settings.include) - set(STAGES))
    if bad_stages:
        raise ValueError(f'unknown stage(s) {bad_stages} in include; choose from {list(STAGES)}')
    if settings.warmup < 0 or settings.iters < 1 or settings.vos_warmup < 0:
        raise ValueError(f'need warmup >= 0, vos_warmup >= 0 and iters >= 1, got {settings.warmup}, '
                         f'{settings.vos_warmup}, {settings.iters}')
    clock = StageClock(settings.device)
    try:
        included = {side.name: clock.install(side, settings.include) for side in sides}
        rows, ratios = _run_all(sides, tasks, sizes, settings, clock, log)
    finally:
        clock.restore()
    return dict(rows=rows, ratios=ratios, included=included)


def _run_all(sides: Sequence[Side], tasks: Sequence[str], sizes: Sequence[Tuple[int, int]],
             settings: BenchSettings, clock: StageClock, log: Callable[[str], None]
             ) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    rows: List[Dict[str, Any]] = []
    ratios: List[Dict[str, Any]] = []
    image_frames = max(settings.warmup + settings.iters, 1)
    vos_frames = settings.vos_frames or settings.vos_warmup + settings.iters + 1
    if vos_frames < settings.vos_warmup + 2:
        raise ValueError(f'vos_frames {vos_frames}: need 1 prompt + {settings.vos_warmup} warm-up '
                         '+ at least 1 timed frame')
    for width, height in sizes:
        for task in tasks:
            runnable = [s for s in sides if task != 'panoptic' or s.panoptic is not None]
            if not runnable:
                log(f'{task}: no model has it, skipped')
                continue
            num_frames = vos_frames if task in VOS_OBJECTS else image_frames
            source = FrameSource(width, height, num_frames, decode='decode' in settings.include)
            rec = Recorder(settings, clock)
            log(f'{task} at {width}x{height}: ' + ', '.join(s.name for s in runnable))
            with NvmlSampler(settings.device) as nvml:
                if task in VOS_OBJECTS:
                    run_vos_task(VOS_OBJECTS[task], runnable, source, rec)
                elif task == 'panoptic':
                    run_panoptic_task(runnable, source, rec)
                else:
                    run_image_task(task, runnable, source, rec)
            for side in sides:
                row: Dict[str, Any] = dict(task=task, size=f'{width}x{height}', model=side.name)
                if side.name not in rec.times_ms:
                    row['status'] = f'n/a ({side.name} has no {task} task)'
                else:
                    row.update(latency_stats(rec.times_ms[side.name]))
                    row['peak_mem_mb'] = rec.peak_mb[side.name]
                    row['peak_mem_kind'] = ('cuda max_memory_allocated above the call start'
                                            if settings.device.startswith('cuda')
                                            else 'process peak-RSS growth during the calls')
                    row.update(held_memory_stats(rec.held_mb[side.name], settings.device))
                    # one sampler per block: interleaved sides share it
                    row['gpu_util_pct'] = nvml.mean
                rows.append(row)
            ref = rows[-len(sides)]
            for row in rows[len(rows) - len(sides) + 1:]:  # none with a single side
                if 'mean_ms' in ref and 'mean_ms' in row:
                    ratios.append(dict(task=task, size=f'{width}x{height}', model=row['model'],
                                       reference=ref['model'],
                                       ratio_mean=row['mean_ms'] / ref['mean_ms'],
                                       ratio_p50=row['p50_ms'] / ref['p50_ms']))
    return rows, ratios


def code_version() -> str:
    """The checkout's commit (``+dirty`` with uncommitted changes), so that a stored result says
    which code it measured; 'unknown' outside a git checkout."""
    repo = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=repo, check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=repo,
                               check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'
    return commit + ('+dirty' if dirty else '')


def environment(device: str) -> Dict[str, Any]:
    """Versions and hardware for the JSON log."""
    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return 'not installed'
    env = dict(python=platform.python_version(), torch=torch.__version__, sam2=version('sam2'),
               mmdet=version('mmdet'), platform=platform.platform(),
               cpu=platform.processor() or platform.machine(), torch_threads=torch.get_num_threads(),
               command=' '.join(shlex.quote(a) for a in sys.argv), code=code_version())
    if device.startswith('cuda'):
        env.update(gpu=torch.cuda.get_device_name(torch.device(device)), cuda=torch.version.cuda)
    return env


def print_table(result: Dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table
    ratio = {(r['task'], r['size'], r['model']): r['ratio_mean'] for r in result['ratios']}
    table = Table(title=title)
    for col in ('task', 'size', 'model', 'mean ms', 'p50', 'p90', 'p99', 'FPS', 'peak MB',
                'held +MB', 'GPU %', 'x faster'):
        table.add_column(col, justify='left' if col in ('task', 'model') else 'right')
    for row in result['rows']:
        if 'mean_ms' not in row:
            table.add_row(row['task'], row['size'], row['model'], *['-'] * 9)
            continue
        util = row.get('gpu_util_pct')
        key = (row['task'], row['size'], row['model'])
        table.add_row(row['task'], row['size'], row['model'], f"{row['mean_ms']:.1f}",
                      f"{row['p50_ms']:.1f}", f"{row['p90_ms']:.1f}", f"{row['p99_ms']:.1f}",
                      f"{row['fps']:.2f}", f"{row['peak_mem_mb']:.0f}",
                      f"{row['held_growth_mb']:.0f}", '-' if util is None else f'{util:.0f}',
                      f'{ratio[key]:.2f}x' if key in ratio else '')
    Console(width=160).print(table)


def plot_fps(result: Dict[str, Any], path: Path, title: str) -> None:
    """FPS vs input resolution, one line per task per model (colour: task, line style: model)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [r for r in result['rows'] if 'fps' in r]
    sizes = sorted({r['size'] for r in rows}, key=lambda s: np.prod([int(v) for v in s.split('x')]))
    models = list(dict.fromkeys(r['model'] for r in rows))
    styles = ['-o', '--s', ':^', '-.d']
    fig, ax = plt.subplots(figsize=(11, 5))
    for ti, task in enumerate(dict.fromkeys(r['task'] for r in rows)):
        for mi, model in enumerate(models):
            points = {r['size']: r['fps'] for r in rows if r['task'] == task and r['model'] == model}
            if points:
                xs = [i for i, s in enumerate(sizes) if s in points]
                ax.plot(xs, [points[sizes[i]] for i in xs], styles[mi % len(styles)], color=f'C{ti}',
                        label=f'{task} / {model}')
    ax.set_xticks(range(len(sizes)), sizes)
    ax.set_xlabel('input size (W x H)')
    ax.set_ylabel('FPS (1000 / mean latency)')
    ax.set_yscale('log')
    ax.set_title(title, fontsize=9)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0))
    _save_figure(fig, path)


def plot_held_memory(result: Dict[str, Any], path: Path, title: str) -> None:
    """Memory held after each timed call (``held_trace``), one line per task / size / model:
    a long stream's memory must stay flat."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(11, 4))
    for row in result['rows']:
        if 'held_trace' in row:
            calls, mb = zip(*row['held_trace'])
            ax.plot(calls, mb, label=f"{row['task']} {row['size']} / {row['model']}")
    ax.set_xlabel('timed call (VOS: frame after the warm-up)')
    ax.set_ylabel(result['rows'][0].get('held_kind', 'memory held') + ' (MB)')
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    _save_figure(fig, path)


def _save_figure(fig, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically and close it."""
    import io

    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format='png', dpi=120)
    plt.close(fig)
    with atomic_open(path, 'wb') as f:
        f.write(buf.getvalue())


def write_outputs(result: Dict[str, Any], meta: Dict[str, Any], json_path: Path, title: str
                  ) -> Path:
    """JSON log (atomically) and the FPS plot beside it (same stem, ``.png``); returns the PNG
    path. With a row of at least ``MEMORY_PLOT_MIN_CALLS`` timed calls (a long VOS stream), also
    the held-memory plot ``<stem>_memory.png``."""
    png_path = json_path.with_suffix('.png')
    long_rows = [r for r in result['rows'] if r.get('n', 0) >= MEMORY_PLOT_MIN_CALLS]
    memory_png = json_path.with_name(json_path.stem + '_memory.png') if long_rows else None
    atomic_write_json(dict(meta, **result, plot=png_path.name,
                           memory_plot=memory_png and memory_png.name), json_path)
    plot_fps(result, png_path, title)
    if memory_png is not None:
        plot_held_memory(dict(result, rows=long_rows), memory_png, title)
    return png_path
