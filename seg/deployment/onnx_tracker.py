"""Reference host loop: a video tracked with onnxruntime and the exported graphs.

The graphs (``onnx_export``) compute; this loop owns the state between frames, as a deployment
host must: per object its prompt query and its ``StreamingMemory`` (which entries to keep: the
prompted frames, key frames by score and spacing, the last frames, capacity eviction). The
memory is the model's own ``StreamingMemory`` (its settings come from ``video.json``), so the
rules live in one place; a host in another language re-implements them (``docs/deployment.md``).

Per frame (``ONNXVideoTracker.step``), exactly as ``StreamingTracker.step``:

1. ``encoder.onnx``: the preprocessed frame -> ``image_embed``;
2. tracked objects (not re-prompted on this frame): their memory, padded to the longest one
   (``memory_embeds [K, M, D]``, ``memory_valid``, ``memory_ages`` = steps since each entry),
   prompt queries and newest remembered masks -> ``video_step.onnx`` -> masks, memory embeddings,
   key-frame scores; the memory is offered the result (``StreamingMemory.update``);
3. objects prompted on this frame (new or re-prompted) -> ``video_prompt.onnx``; each keeps its
   new prompt query and its memory gets the prompted frame (``StreamingMemory.add_object``).

Graphs of a model with a ``mask_warp`` also take the preprocessed frame, and video_step the
previous step's warp keys; the loop keeps the keys the last step's graphs returned (the
tracker's ``warp_keys``).

Objects never interact in the model, so running the two graphs separately on a frame that has
both kinds gives what one PyTorch step gives. ``check_video_parity`` compares the loop with
``RapSAM.track_step`` frame by frame.
"""
import contextlib
import json
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Hashable, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.structures import DetDataSample
from torch import nn

from seg.apis.image_predictor import upsample_masks
from seg.models.detectors.streaming_tracker import StreamingTracker
from seg.models.utils import StreamingMemory
from seg.structures import build_prompts

from .onnx_export import VIDEO_CONFIG, WARP_STEP_INPUTS

GRAPHS = ('encoder', 'video_prompt', 'video_step')


@dataclass
class FramePrompts:
    """Prompts given on one frame, one row per object, in the video_prompt graph's layout
    (coordinates x / W, y / H of the padded ``H x W`` input; see ``docs/deployment.md``)."""
    obj_ids: List[Hashable]
    point_coords: np.ndarray  # [N, P, 2] float32
    point_labels: np.ndarray  # [N, P] int64: 1 positive, 0 negative, -1 padding
    boxes: np.ndarray         # [N, 4] float32 xyxy
    box_valid: np.ndarray     # [N] bool
    mask_prompt: np.ndarray   # [N, H, W] float32 0..1
    mask_valid: np.ndarray    # [N] bool

    @classmethod
    def create(cls, obj_ids: Sequence[Hashable], input_hw: Tuple[int, int],
               points: Optional[np.ndarray] = None, point_labels: Optional[np.ndarray] = None,
               boxes: Optional[np.ndarray] = None, box_valid: Optional[np.ndarray] = None,
               masks: Optional[np.ndarray] = None,
               mask_valid: Optional[np.ndarray] = None) -> 'FramePrompts':
        """From pixels of the padded input: ``points [N, P, 2]`` with ``point_labels [N, P]``,
        ``boxes [N, 4]`` xyxy (``box_valid``: default all), ``masks [N, H, W]`` 0..1
        (``mask_valid``: default all); missing kinds are filled in as absent."""
        n, (h, w) = len(obj_ids), input_hw
        scale = np.array([w, h], dtype=np.float32)
        if points is None:  # one padding click: the graph needs P >= 1
            points, point_labels = np.zeros((n, 1, 2)), np.full((n, 1), -1)
        elif point_labels is None:
            raise ValueError('FramePrompts: points given without point_labels')
        if boxes is None:
            boxes, box_valid = np.zeros((n, 4)), np.zeros(n, dtype=bool)
        if masks is None:
            masks, mask_valid = np.zeros((n, h, w)), np.zeros(n, dtype=bool)
        prompts = cls(list(obj_ids), (np.asarray(points, dtype=np.float32) / scale),
                      np.asarray(point_labels, dtype=np.int64),
                      np.asarray(boxes, dtype=np.float32) / np.tile(scale, 2),
                      np.ones(n, dtype=bool) if box_valid is None else np.asarray(box_valid, bool),
                      np.asarray(masks, dtype=np.float32),
                      np.ones(n, dtype=bool) if mask_valid is None else np.asarray(mask_valid, bool))
        prompts.check(input_hw)
        return prompts

    def check(self, input_hw: Tuple[int, int]) -> None:
        """Raise ValueError naming the field whose shape, dtype or content is wrong."""
        n = len(self.obj_ids)
        if len(set(self.obj_ids)) != n:
            raise ValueError(f'FramePrompts: object ids must be distinct, got {self.obj_ids}')
        p = self.point_coords.shape[1] if self.point_coords.ndim == 3 else -1
        shapes = dict(point_coords=(n, p, 2), point_labels=(n, p), boxes=(n, 4), box_valid=(n, ),
                      mask_prompt=(n, *input_hw), mask_valid=(n, ))
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f'FramePrompts: {name} must be {shape} for {n} objects (P >= 1 '
                                 f'points, masks at the padded input size), got '
                                 f'{getattr(self, name).shape}')
        if p < 1:
            raise ValueError('FramePrompts: point_coords needs P >= 1 (give one click with label '
                             '-1 to an object without clicks)')
        if not np.isin(self.point_labels, (-1, 0, 1)).all():
            raise ValueError(f'FramePrompts: point_labels must be 1, 0 or -1, got '
                             f'{np.unique(self.point_labels).tolist()}')
        prompted = ((self.point_labels >= 0).any(1) | self.box_valid
                    | (self.mask_valid & (self.mask_prompt > 0).reshape(n, -1).any(1)))
        if not prompted.all():
            raise ValueError(f'FramePrompts: object(s) {np.asarray(self.obj_ids)[~prompted].tolist()} '
                             'have no prompt (a click with label >= 0, a valid box or a non-empty '
                             'valid mask)')

    def feed(self) -> Dict[str, np.ndarray]:
        """The video_prompt graph's prompt inputs."""
        return dict(point_coords=self.point_coords, point_labels=self.point_labels,
                    boxes=self.boxes, box_valid=self.box_valid, mask_prompt=self.mask_prompt,
                    mask_valid=self.mask_valid)


class ONNXVideoTracker:
    """Track objects through a video with ``encoder.onnx``, ``video_prompt.onnx`` and
    ``video_step.onnx`` (onnxruntime) and a host-side ``StreamingMemory``.

    Args:
        onnx_dir: the folder ``tools/deployment/export_onnx.py --parts encoder,video`` wrote.
        providers: onnxruntime execution providers (default CPU).
    """

    def __init__(self, onnx_dir: str,
                 providers: Sequence[str] = ('CPUExecutionProvider', )) -> None:
        import onnxruntime as ort
        missing = [f for f in (*(f'{g}.onnx' for g in GRAPHS), VIDEO_CONFIG)
                   if not osp.isfile(osp.join(onnx_dir, f))]
        if missing:
            raise FileNotFoundError(f'ONNXVideoTracker: {onnx_dir} lacks {missing}; export them with '
                                    f'tools/deployment/export_onnx.py --parts encoder,video '
                                    f'--out-dir {onnx_dir}')
        with open(osp.join(onnx_dir, VIDEO_CONFIG)) as f:
            config = json.load(f)
        self.input_hw = tuple(config['input_hw'])
        self.memory_settings = dict(config['memory'])
        self.sessions = {g: ort.InferenceSession(osp.join(onnx_dir, f'{g}.onnx'),
                                                 providers=list(providers)) for g in GRAPHS}
        step_inputs = {i.name: i for i in self.sessions['video_step'].get_inputs()}
        self.mask_hw = tuple(step_inputs['prev_mask_logits'].shape[1:])  # (h, w)
        # graphs of a head with a mask_warp carry the previous frame's keys
        self.mask_warp = set(WARP_STEP_INPUTS) <= set(step_inputs)
        prompt_has_image = any(i.name == 'image' for i in self.sessions['video_prompt'].get_inputs())
        if prompt_has_image != self.mask_warp:
            raise ValueError(f'ONNXVideoTracker: {onnx_dir}/video_prompt.onnx and video_step.onnx '
                             'come from different models (one has the mask_warp inputs, the '
                             'other not); export them together')
        self.reset()

    def reset(self) -> None:
        """Forget every object: a new video."""
        # the tracker's containers (queries, memory, last step) and its object bookkeeping;
        # the computation is the graphs'
        self.state = StreamingTracker(StreamingMemory(**self.memory_settings))

    @property
    def object_ids(self) -> List[Hashable]:
        return self.state.object_ids

    def remove_object(self, obj_id: Hashable) -> None:
        self.state.remove_object(obj_id)

    def encode(self, image: np.ndarray) -> np.ndarray:
        """A preprocessed frame ``[1, 3, H, W]`` float32 (normalised, padded to the export size:
        ``RapSAM.preprocess_frame``) -> ``image_embed [1, C, h, w]``."""
        if image.shape != (1, 3, *self.input_hw):
            raise ValueError(f'ONNXVideoTracker: the frame must be preprocessed to '
                             f'{(1, 3, *self.input_hw)} (the export size), got {image.shape}')
        return self.sessions['encoder'].run(None, {'image': image.astype(np.float32)})[0]

    def step(self, image: np.ndarray, frame_id: int, prompts: Optional[FramePrompts] = None,
             track_others: bool = True) -> Tuple[List[Hashable], np.ndarray, np.ndarray]:
        """Segment one frame.

        Args:
            image: the preprocessed frame (see ``encode``).
            frame_id: the memory's clock, strictly increasing over the video (see
                ``StreamingTracker``); with ``track_others=False`` it may repeat the last one.
            prompts: objects prompted on this frame (new ids add objects, tracked ids re-prompt).
            track_others: False decodes only the prompted objects (a re-prompt of the frame just
                tracked).

        Returns:
            Object ids (tracked ones first, then the prompted ones), their mask logits
            ``[K, h, w]`` and predicted IoU ``[K]``; nothing before the first prompt.
        """
        state = self.state
        prompt_ids = [] if prompts is None else list(prompts.obj_ids)
        if prompts is not None:
            prompts.check(self.input_hw)
        if state.last_frame is not None and (frame_id < state.last_frame or (
                frame_id == state.last_frame and (track_others or not prompt_ids))):
            raise ValueError(f'ONNXVideoTracker: frame {frame_id} does not come after frame '
                             f'{state.last_frame}; only a re-prompt (track_others=False) may '
                             'repeat the last one')
        tracked = [i for i in state.queries if i not in prompt_ids] if track_others else []
        if not tracked and not prompt_ids:  # nothing to follow yet
            return [], np.zeros((0, *self.mask_hw), np.float32), np.zeros(0, np.float32)
        embed = self.encode(image)
        logits, ious = [], []
        warp_feed = dict(image=image.astype(np.float32)) if self.mask_warp else {}
        keys = None
        if tracked:
            feed = self._memory_inputs(tracked, frame_id)
            if self.mask_warp:  # a tracked object implies an earlier step, which left its keys
                feed.update(warp_feed, prev_warp_keys=state.warp_keys.numpy())
            masks, embeds, scores, iou, *keys = self.sessions['video_step'].run(
                None, dict(image_embed=embed, **feed))
            state.memory.update(frame_id, {i: torch.from_numpy(embeds[r]) for r, i in enumerate(tracked)},
                                {i: torch.from_numpy(masks[r]) for r, i in enumerate(tracked)},
                                {i: float(scores[r]) for r, i in enumerate(tracked)})
            logits.append(masks)
            ious.append(iou)
        if prompt_ids:
            masks, memory_masks, embeds, queries, iou, *keys = self.sessions['video_prompt'].run(
                None, dict(image_embed=embed, **prompts.feed(), **warp_feed))
            for j, obj_id in enumerate(prompt_ids):
                state.queries[obj_id] = torch.from_numpy(queries[j])
                state.memory.add_object(obj_id, frame_id, torch.from_numpy(embeds[j]),
                                        torch.from_numpy(memory_masks[j]))
            logits.append(masks)
            ious.append(iou)
        state.last_frame = frame_id
        # both graphs give the same keys of this frame
        state.warp_keys = torch.from_numpy(keys[0]) if keys else None
        return tracked + prompt_ids, np.concatenate(logits), np.concatenate(ious)

    def _memory_inputs(self, obj_ids: List[Hashable], frame_id: int) -> Dict[str, np.ndarray]:
        """video_step's per-object inputs: memory padded to the longest one (``memory_valid``
        False on padding), ages in steps, prompt queries, newest remembered masks."""
        readout = self.state.memory.fetch(frame_id)
        entries = [readout[i] for i in obj_ids]  # every tracked object holds its prompted frame
        k, m = len(obj_ids), max(len(r.frame_ids) for r in entries)
        embeds = np.zeros((k, m, entries[0].embeds.shape[-1]), np.float32)
        valid = np.zeros((k, m), bool)
        ages = np.zeros((k, m), np.int64)
        for j, r in enumerate(entries):
            n = len(r.frame_ids)
            embeds[j, :n], valid[j, :n] = r.embeds.numpy(), True
            ages[j, :n] = frame_id - r.frame_ids.numpy()
        order = self.state.object_ids
        newest = self.state.latest_masks()[[order.index(i) for i in obj_ids]]
        return dict(queries=torch.stack([self.state.queries[i] for i in obj_ids]).numpy(),
                    memory_embeds=embeds, memory_valid=valid, memory_ages=ages,
                    prev_mask_logits=newest.numpy())

    def masks_at(self, logits: np.ndarray, img_hw: Tuple[int, int],
                 ori_hw: Optional[Tuple[int, int]] = None) -> np.ndarray:
        """Mask logits ``[K, h, w]`` -> the frame: upsampled to the padded input, the padding
        cropped to ``img_hw`` (the resized frame), resized to ``ori_hw`` (default ``img_hw``)."""
        sample = DetDataSample(metainfo=dict(img_shape=tuple(img_hw),
                                             ori_shape=tuple(ori_hw or img_hw)))
        return upsample_masks(torch.from_numpy(logits), sample, self.input_hw).numpy()


def run_video(tracker: ONNXVideoTracker, frames: Iterable[np.ndarray],
              prompts: Dict[int, FramePrompts]
              ) -> Iterator[Tuple[int, List[Hashable], np.ndarray, np.ndarray]]:
    """The reference loop: preprocessed frames in order, prompts keyed by frame index ->
    ``(frame_idx, obj_ids, mask_logits [K, h, w], iou [K])`` per frame (step = frame index)."""
    tracker.reset()
    for idx, image in enumerate(frames):
        yield (idx, *tracker.step(image, idx, prompts.get(idx)))


@contextlib.contextmanager
def full_frame_encoder(model: nn.Module) -> Iterator[None]:
    """The PyTorch tracker's encoder as encoder.onnx runs it: every frame computed in full (no
    ``regional_features`` crop) and the token pruner scoring every frame (its cross-frame score
    reuse off). Those two are encoder-side savings of the PyTorch tracker that the graphs do not
    have; with them on, the features (and masks) legitimately differ."""
    pruner = getattr(model.backbone, 'token_pruner', None)
    regional, period = model.regional_features, getattr(pruner, 'refresh_period', None)
    model.regional_features = None
    if pruner is not None:
        pruner.refresh_period = 1
    try:
        yield
    finally:
        model.regional_features = regional
        if pruner is not None:
            pruner.refresh_period = period


def _synthetic_video(num_frames: int, frame_hw: Tuple[int, int], seed: int) -> List[torch.Tensor]:
    """Raw frames ``[3, h, w]`` uint8: a bright square moving over a noisy background."""
    gen = torch.Generator().manual_seed(seed)
    h, w = frame_hw
    frames = []
    for t in range(num_frames):
        frame = torch.randint(0, 80, (3, h, w), generator=gen, dtype=torch.uint8)
        y, x = h // 4 + 2 * t, w // 4 + 3 * t
        frame[:, y:y + h // 3, x:x + w // 3] = 220
        frames.append(frame)
    return frames


def _parity_prompts(input_hw: Tuple[int, int], frame_hw: Tuple[int, int]
                    ) -> Dict[int, Tuple[List[int], dict]]:
    """Per frame, object ids and prompts (pixels of the padded input): frame 0 object 1 by a
    mask and object 2 by clicks + a box; frame 2 adds object 3 by a click correcting a mask
    (tracked and prompted objects on one frame; the memory keeps the decoded mask, not the given
    one, and frame 3 tracks from it); frame 3 re-prompts object 1 by clicks."""
    h, w = frame_hw
    mask = torch.zeros(1, *input_hw)
    mask[0, h // 4:h // 4 + h // 3, w // 4:w // 4 + w // 3] = 1.0
    corrected = torch.zeros(1, *input_hw)
    corrected[0, h // 2:, :w // 2] = 1.0
    return {
        0: ([1, 2], dict(points=[[[0, 0]], [[w * 0.7, h * 0.2], [w * 0.1, h * 0.9]]],
                         point_labels=[[-1], [1, 0]], bboxes=[[0, 0, 0, 0], [w * 0.5, 0, w, h * 0.5]],
                         box_valid=[False, True], masks=torch.cat([mask, torch.zeros_like(mask)]))),
        2: ([3], dict(points=[[[w * 0.2, h * 0.8]]], point_labels=[[1]], masks=corrected)),
        3: ([1], dict(points=[[[w * 0.45, h * 0.45], [w * 0.9, h * 0.9]]], point_labels=[[1, 0]])),
    }


@torch.no_grad()
def check_video_parity(model: nn.Module, onnx_dir: str, num_frames: int = 4,
                       seed: int = 0) -> Dict[str, float]:
    """The host loop against ``RapSAM.track_step`` on a synthetic video of the export size
    (minus 16 rows, so the padding is cropped): prompts on frames 0, 2 (a new object) and 3 (a
    re-prompt), see ``_parity_prompts``; the PyTorch encoder as ``full_frame_encoder``.

    Returns ``video_loop_max_abs_diff`` (mask logits at the frame resolution, every frame and
    object) and ``video_loop_min_iou`` (of the masks ``logits > 0``; empty vs empty counts 1).
    Raises if the two disagree on the object ids of a frame."""
    host = ONNXVideoTracker(onnx_dir)
    h, w = host.input_hw
    frame_hw = (max(h - 16, 16), w)
    spec = _parity_prompts(host.input_hw, frame_hw)
    model.eval()
    tracker = model.new_tracker()
    host.reset()
    max_diff, min_iou = 0.0, 1.0
    with full_frame_encoder(model):
        for t, frame in enumerate(_synthetic_video(num_frames, frame_hw, seed)):
            inputs, sample = model.preprocess_frame(frame)
            if tuple(inputs.shape[-2:]) != host.input_hw:
                raise ValueError(f'check_video_parity: the model pads a {frame_hw} frame to '
                                 f'{tuple(inputs.shape[-2:])}, the graphs take {host.input_hw}; '
                                 'build the model without resizing (image_size=None)')
            prompts = None
            if t in spec:
                ids, kinds = spec[t]
                sample.prompts = build_prompts(**kinds)
                sample.prompts.obj_ids = torch.tensor(ids)
                masks = kinds.get('masks')
                prompts = FramePrompts.create(
                    ids, host.input_hw, sample.prompts.points.numpy(),
                    sample.prompts.point_labels.numpy(), sample.prompts.bboxes.numpy(),
                    sample.prompts.box_valid.numpy(), None if masks is None else masks.numpy())
            ref = model.track_step(tracker, inputs, sample, t, rescale=False)
            ids, logits, _ = host.step(inputs.numpy(), t, prompts)
            if ref.instances_id.tolist() != ids:
                raise RuntimeError(f'check_video_parity: frame {t}: the host loop has objects '
                                   f'{ids}, track_step {ref.instances_id.tolist()}')
            got = host.masks_at(logits, frame_hw)
            want = ref.mask_logits.numpy()
            max_diff = max(max_diff, float(np.abs(got - want).max()))
            for g, r in zip(got > 0, want > 0):
                union = (g | r).sum()
                min_iou = min(min_iou, float((g & r).sum() / union) if union else 1.0)
    return dict(video_loop_max_abs_diff=max_diff, video_loop_min_iou=min_iou)
