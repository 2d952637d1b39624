"""SAM2-style video predictor for FastSAM2: prompts on any frame, propagation both ways, streaming.

Usage, as with SAM2's ``SAM2VideoPredictor``::

    predictor = FastSAM2VideoPredictor.from_config('configs/fastsam2/model_fastsam2_r50.py', ckpt)
    state = predictor.init_state('video.mp4')            # or a frame folder, a list, an iterator
    predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[210, 350]], labels=[1])
    for frame_idx, obj_ids, masks in predictor.propagate_in_video(state):
        ...                                               # bool [K, 1, H, W] at the video's size

The video's state (prompts per (frame, object), the masks last produced per frame, the frame
source) lives in the ``VideoState`` the caller holds; the model holds none, so one model serves
several videos at once. Frames are decoded as propagation reaches them and only a few processed
frames are cached (``video_io``).

Results, as in SAM2: every call that prompts or propagates returns ``(frame_idx, obj_ids,
masks)`` for ALL the video's objects on that frame, in ``state.obj_ids`` order. An object's mask
there is the latest one it got on that frame (from a prompt, or from the last propagation over
the frame); an object without one is empty. ``masks`` are bool ``[K, 1, H, W]`` by default;
``return_logits=True`` gives SAM2's float logits instead (``NO_OBJ_SCORE`` where an object has no
mask), so SAM2 code that thresholds them (``masks > 0``) works either way. A mask is stored on
the model's mask grid (float16; for a 4:3 video at the 1024 processing size 192x256, 96 KB per
object and frame, so about 1 GB per object over 10 000 propagated frames: pass
``offload_to_cpu`` to keep them off the device, SAM2 keeps more per frame) and resampled to the
video's size when returned: bool masks without a float plane (``mask_geometry.to_output_masks``;
8000x6000 bool masks are 48 MB per object), logits one object at a time (float logits for K
objects at once would be K x 192 MB).
Measured there with 4 objects (tiny model, 512 processing size, CPU): peak RSS 1.9 GB and
2.4 s per frame, against 3.5 GB and 4.3 s when every frame returned float logits.

Corrections, as in SAM2: a prompt on a frame where the object already has a mask (tracked by a
propagation, or a cleared prompt's) corrects THAT mask: it goes into the model as the mask input
with the new clicks / box (the model's correction convention, as its interactive training feeds
the previous prediction), so one negative click removes a region of the tracked mask instead of
starting the object over. That mask stays the frame's starting point: ``clear_old_points=True``
discards the earlier clicks there, not the tracked mask; ``add_new_mask`` overrides it while the
given mask stands.

Propagation runs a fresh ``StreamingTracker`` from the start frame in the requested direction:
each frame decodes every tracked object as a query of ONE head forward, and the prompts stored for
a frame are fed when propagation reaches it (new objects join, prompted ones restart from their
prompt). Objects whose prompts all lie behind the start frame are first seeded from their nearest
prompted frame. Objects not tracked on a frame (not yet prompted in the direction of travel, or
removed) have no mask there. An object may be prompted on any number of frames; its memory keeps
the first prompted one and the newest (``StreamingMemory``, ``long_capacity``).

Streaming (a camera): ``start_stream`` then ``track(state, frame)`` per frame; prompts go on the
current frame (``state.frame_idx``) between frames and take effect at once. Only the current
frame and the bounded memory are held. A stream has ONE frame size, set by its first frame: a
frame of another size is rejected with a ValueError naming both sizes (the memory holds features
of the first size; start a new stream, ``start_stream``, for the new size).

Inputs are checked by ``seg.utils.validation`` (points / boxes: NaN / inf rejected, slightly
outside the frame clipped, farther rejected; labels 1 / 0; masks of the video size; frames
``uint8 [H, W, 3]`` up to ``max_input_pixels``).
"""
import dataclasses
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData

from seg.models.data_preprocessor.prompt_utils import pad_prompt_masks
from seg.models.detectors.streaming_tracker import StreamingTracker
from seg.models.utils.mask_geometry import to_output_masks, to_output_res
from seg.structures import build_prompts
from seg.utils.precision import autocast, check_precision
from seg.utils.validation import (
    DEFAULT_MAX_INPUT_PIXELS,
    check_boxes,
    check_image,
    check_int,
    check_mask,
    check_points,
)

from .image_predictor import DEFAULT_IMAGE_SIZE, build_model
from .video_io import VideoInput, VideoSource, open_video

NO_OBJ_SCORE = -1024.0  # SAM2's mask logit for "the object has no mask on this frame"
# stored logits are float16 (max 65504); beyond SAM2's no-object score they say nothing more
_LOGIT_CAP = -NO_OBJ_SCORE
ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]


@dataclasses.dataclass
class ProcessedFrame:
    """A frame through the model's data preprocessor: ``inputs [1, 3, H', W']`` and the sample's
    metainfo (``ori_shape``, ``img_shape``, ``scale_factor``, ``batch_input_shape``)."""
    inputs: torch.Tensor
    metainfo: dict


@dataclasses.dataclass
class ObjectPrompt:
    """The prompts of one object on one frame, in original video pixels."""
    points: torch.Tensor  # float [P, 2] (x, y)
    labels: torch.Tensor  # long [P], 1 positive / 0 negative
    box: Optional[torch.Tensor] = None  # float [4] xyxy
    mask: Optional[torch.Tensor] = None  # float [H, W], 1 inside
    text: str = ''
    # float16 [h, w] mask-grid logits: the object's mask on this frame when it was first prompted
    # there (None: it had none); the mask input the clicks / box correct while no mask is given
    prior: Optional[torch.Tensor] = None


@dataclasses.dataclass
class VideoState:
    """Everything the predictor knows about one video; pass it to every call.

    Attributes:
        source: the frame source (None in streaming mode).
        video_height / video_width: the frame size (a stream's is set by its first frame).
        offload_to_cpu: processed frames are cached on the CPU, moved to the device when used.
        streaming: made by ``start_stream``.
        obj_ids: the objects, in the order they were first prompted.
        prompts: frame index -> object id -> its prompts on that frame (a stream keeps only the
            current frame's).
        outputs: frame index -> object id -> its latest mask logits on that frame, float16 on the
            model's mask grid (the device's, the CPU's with ``offload_to_cpu``): what the last
            prompt there or the last propagation over the frame produced (a stream keeps the
            current frame's).
        frame_meta: the processed frames' geometry (``img_shape``, ``ori_shape``,
            ``batch_input_shape``), one for all frames of a video.
        tracker / frame_idx / step / current: streaming only: the tracker, the current frame's
            index, tracker step and processed frame.
    """
    source: Optional[VideoSource]
    video_height: Optional[int]
    video_width: Optional[int]
    offload_to_cpu: bool = False
    streaming: bool = False
    obj_ids: List[int] = dataclasses.field(default_factory=list)
    prompts: Dict[int, Dict[int, ObjectPrompt]] = dataclasses.field(default_factory=dict)
    outputs: Dict[int, Dict[int, torch.Tensor]] = dataclasses.field(default_factory=dict)
    frame_meta: Optional[dict] = None
    tracker: Optional[StreamingTracker] = None
    frame_idx: int = -1
    step: int = -1
    current: Optional[ProcessedFrame] = None

    @property
    def num_frames(self) -> Optional[int]:
        """Frames of the video (None for an iterator that has not ended; a stream: frames seen)."""
        if self.streaming:
            return self.frame_idx + 1
        return self.source.num_frames


class FastSAM2VideoPredictor:
    """Promptable video segmentation with a FastSAM2 model (SAM2's video predictor API).

    Args:
        model: a built ``RapSAM`` with a streaming memory (``memory=``), weights loaded.
        cache_size: processed frames each video keeps (``init_state`` may override it).
        max_input_pixels: frames above this many pixels are rejected (None: no cap).
        return_logits: masks come back as SAM2's float logits (``NO_OBJ_SCORE`` where an object
            has no mask) instead of bool masks (see the module docstring for the memory).
        precision: ``'fp32'``, or ``'fp16'`` / ``'bf16'``: every ``track_step`` runs under
            ``torch.autocast`` on the model's device (``seg.utils.precision``; bf16 also on CPU);
            the masks come back as with fp32.
    """

    def __init__(self, model: torch.nn.Module, cache_size: int = 4,
                 max_input_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS,
                 return_logits: bool = False, precision: str = 'fp32') -> None:
        if not hasattr(model, 'track_step'):
            raise TypeError(f'FastSAM2VideoPredictor needs a RapSAM model, got {type(model).__name__}')
        if model.memory_cfg is None:
            raise ValueError("FastSAM2VideoPredictor: the model has no memory=dict(type='StreamingMemory', "
                             '...); use a FastSAM2 config (e.g. configs/fastsam2/model_fastsam2_tiny.py)')
        self.model = model.eval()
        self.cache_size = cache_size
        self.max_input_pixels = max_input_pixels
        self.return_logits = return_logits
        check_precision(precision, next(model.parameters()).device)
        self.precision = precision

    @classmethod
    def from_config(cls, config: Union[str, Config], checkpoint: Optional[str] = None,
                    device: str = 'cpu', image_size: Optional[int] = DEFAULT_IMAGE_SIZE,
                    cfg_options: Optional[dict] = None,
                    max_input_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS,
                    return_logits: bool = False, precision: str = 'fp32'
                    ) -> 'FastSAM2VideoPredictor':
        """Build the config's model (``image_predictor.build_model``: a LOCAL checkpoint, None
        keeps the random init with a warning; ``image_size``: the longer side frames are resized
        to on the device, None: as given; ``cfg_options`` merged into the config)."""
        return cls(build_model(config, checkpoint, device, image_size, cfg_options),
                   max_input_pixels=max_input_pixels, return_logits=return_logits,
                   precision=precision)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ states
    @torch.no_grad()
    def init_state(self, video: VideoInput, offload_to_cpu: bool = False,
                   cache_size: Optional[int] = None) -> VideoState:
        """A new state for ``video``: a folder of JPEG / PNG frames, an mp4 / avi / webm file, a
        list of RGB ``uint8 [H, W, 3]`` frames, an iterator of them (forward propagation only) or
        a ``VideoSource``. Only the first frame is decoded now."""
        source = open_video(video, cache_size=cache_size or self.cache_size,
                            max_pixels=self.max_input_pixels)
        source.transform = lambda frame: self._process(frame, offload_to_cpu)
        # the frame geometry, and frame 0 is usually the first one prompted
        meta = dict(source[0].metainfo)
        h, w = source.frame_size
        return VideoState(source=source, video_height=h, video_width=w,
                          offload_to_cpu=offload_to_cpu, frame_meta=meta)

    def start_stream(self, offload_to_cpu: bool = False) -> VideoState:
        """A new streaming state: feed frames with ``track``; prompt the current one between."""
        return VideoState(source=None, video_height=None, video_width=None,
                          offload_to_cpu=offload_to_cpu, streaming=True,
                          tracker=self.model.new_tracker())

    def reset_state(self, state: VideoState) -> None:
        """Forget every prompt, object and mask (the frames stay cached; a stream keeps its
        position)."""
        state.obj_ids.clear()
        state.prompts.clear()
        state.outputs.clear()
        if state.streaming:
            state.tracker = self.model.new_tracker()

    # ------------------------------------------------------------------ prompts
    @torch.no_grad()
    def add_new_points_or_box(self, state: VideoState, frame_idx: int, obj_id: int,
                              points: Optional[ArrayLike] = None, labels: Optional[ArrayLike] = None,
                              box: Optional[ArrayLike] = None, clear_old_points: bool = True,
                              normalize_coords: bool = True
                              ) -> Tuple[int, List[int], torch.Tensor]:
        """Clicks (``points [P, 2]`` x, y with ``labels [P]``: 1 positive, 0 negative) and / or a
        ``box`` (x1, y1, x2, y2) for object ``obj_id`` on ``frame_idx``, in video pixels
        (``normalize_coords=False``: already divided by the width / height, as in SAM2).

        If the object already has a mask on that frame (tracked there by a propagation), the
        prompt corrects it: the mask goes into the model with the clicks / box (SAM2 feeds its
        previous mask logits the same way), so one negative click removes a region of it.
        ``clear_old_points=True`` replaces the object's clicks, box and given mask on that frame
        (its text stays) but still corrects the tracked mask; False adds the clicks to them.

        Returns ``(frame_idx, obj_ids, masks [K, 1, H, W])`` for ALL the video's objects on that
        frame, as SAM2 does: ``obj_id``'s new mask, every other object's current mask there
        (unchanged by this prompt), an empty one (``NO_OBJ_SCORE`` logits) for an object with
        none (module docstring: bool, or logits with ``return_logits``).
        """
        self._check_obj_id(obj_id)
        self._check_frame(state, frame_idx)
        if points is None and box is None:
            raise ValueError('add_new_points_or_box: give points (with labels) or a box')
        pts, labs = self._check_points(state, points, labels, normalize_coords)
        bx = self._check_box(state, box, normalize_coords)
        old, prior = self._prompt_base(state, frame_idx, obj_id)
        if clear_old_points or old is None:
            new = ObjectPrompt(pts, labs, bx, None, old.text if old is not None else '', prior)
        else:
            new = dataclasses.replace(old, points=torch.cat([old.points, pts]),
                                      labels=torch.cat([old.labels, labs]),
                                      box=bx if bx is not None else old.box)
        return self._set_prompt(state, frame_idx, obj_id, new)

    @torch.no_grad()
    def add_new_mask(self, state: VideoState, frame_idx: int, obj_id: int, mask: ArrayLike
                     ) -> Tuple[int, List[int], torch.Tensor]:
        """A mask prompt ``[H, W]`` (the video's size; > 0.5 is inside) for ``obj_id`` on
        ``frame_idx``; it replaces the object's clicks and box there and, while it stands, its
        tracked mask (the object's memory keeps the given mask). Returns as
        ``add_new_points_or_box``: every object's mask on the frame."""
        self._check_obj_id(obj_id)
        self._check_frame(state, frame_idx)
        size = (state.video_height, state.video_width)
        m = torch.as_tensor(check_mask(mask, f'add_new_mask: mask of object {obj_id}', size))
        m = (m.float() > 0.5).float()
        if not m.any():
            raise ValueError(f'add_new_mask: the mask of object {obj_id} on frame {frame_idx} is '
                             'empty; use remove_object or clear_all_prompts_in_frame instead')
        old, prior = self._prompt_base(state, frame_idx, obj_id)
        new = ObjectPrompt(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), None, m,
                           old.text if old is not None else '', prior)
        return self._set_prompt(state, frame_idx, obj_id, new)

    @torch.no_grad()
    def add_text_prompt(self, state: VideoState, frame_idx: int, obj_id: int, text: str
                        ) -> Tuple[int, List[int], torch.Tensor]:
        """A text prompt (e.g. ``'the red car'``) for ``obj_id`` on ``frame_idx``, alone or with
        the object's clicks / box / mask there (or its tracked mask there, as a correction does);
        it also guards the object's memory against drift. Returns as ``add_new_points_or_box``:
        every object's mask on the frame."""
        self._check_obj_id(obj_id)
        self._check_frame(state, frame_idx)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f'add_text_prompt: text must be a non-empty str, got {text!r}')
        old, prior = self._prompt_base(state, frame_idx, obj_id)
        new = (dataclasses.replace(old, text=text) if old is not None else
               ObjectPrompt(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), text=text,
                            prior=prior))
        return self._set_prompt(state, frame_idx, obj_id, new)

    def remove_object(self, state: VideoState, obj_id: int) -> List[int]:
        """Forget an object and all its prompts; returns the remaining object ids. Allowed at any
        time, also while ``propagate_in_video`` runs (it stops yielding the object)."""
        self._check_known(state, obj_id)
        self._forget(state, obj_id)
        for frame_idx in list(state.prompts):
            state.prompts[frame_idx].pop(obj_id, None)
            if not state.prompts[frame_idx]:
                del state.prompts[frame_idx]
        if state.streaming and obj_id in state.tracker.object_ids:
            state.tracker.remove_object(obj_id)
        return list(state.obj_ids)

    def clear_all_prompts_in_frame(self, state: VideoState, frame_idx: int, obj_id: int) -> None:
        """Drop ``obj_id``'s prompts on ``frame_idx``; an object left without prompts is removed.
        Its mask on the frame stays (as in SAM2) until a propagation passes it again: a new
        prompt there corrects it. A stream has already fed its prompts to the tracker: use
        ``remove_object`` there."""
        if state.streaming:
            raise ValueError('clear_all_prompts_in_frame: a stream has already consumed its prompts; '
                             'use remove_object, or re-prompt the object')
        self._check_frame(state, frame_idx)
        self._check_known(state, obj_id)
        frame = state.prompts.get(frame_idx, {})
        frame.pop(obj_id, None)
        if not frame:
            state.prompts.pop(frame_idx, None)
        if not any(obj_id in p for p in state.prompts.values()):
            self._forget(state, obj_id)

    # ------------------------------------------------------------------ propagation
    @torch.no_grad()
    def propagate_in_video(self, state: VideoState, start_frame_idx: Optional[int] = None,
                           max_frame_num_to_track: Optional[int] = None, reverse: bool = False
                           ) -> Iterator[Tuple[int, List[int], torch.Tensor]]:
        """Yield ``(frame_idx, obj_ids, masks [K, 1, H, W])`` frame by frame from
        ``start_frame_idx`` (default: the first prompted frame, the last one when ``reverse``)
        over ``max_frame_num_to_track`` more frames (default: to the end of the video). Every
        object has a mask where this run tracks it, an empty one elsewhere (module docstring);
        each frame's masks become the state's masks of that frame.

        Prompts added or objects removed while iterating take effect on the frames not reached
        yet. Each run starts from the stored prompts alone (a fresh memory).
        """
        if state.streaming:
            raise ValueError('propagate_in_video: a stream is tracked frame by frame with track()')
        if not state.prompts:
            raise ValueError('propagate_in_video: no prompts yet; add points, a box, a mask or a '
                             'text on some frame first')
        if max_frame_num_to_track is not None and max_frame_num_to_track < 0:
            raise ValueError(f'max_frame_num_to_track must be >= 0, got {max_frame_num_to_track}')
        if reverse and not state.source.random_access:
            raise ValueError(f'propagate_in_video: {state.source.name} is read forwards only; '
                             'reverse propagation needs a file, a folder or a frame list')
        prompted = sorted(state.prompts)
        start = (prompted[-1] if reverse else prompted[0]) if start_frame_idx is None else start_frame_idx
        self._check_frame(state, start)
        if reverse:
            stop = 0 if max_frame_num_to_track is None else max(start - max_frame_num_to_track, 0)
            frames = iter(range(start, stop - 1, -1))
        else:
            stop = None if max_frame_num_to_track is None else start + max_frame_num_to_track
            frames = _forward_frames(state.source, start, stop)

        tracker = self.model.new_tracker()
        step = 0
        for frame_idx, objs in self._seeds(state, start, reverse):
            self._decode(state, tracker, frame_idx, step, objs)
            step += 1
        for frame_idx in frames:
            for gone in [o for o in tracker.object_ids if o not in state.obj_ids]:
                tracker.remove_object(gone)
            objs = list(state.prompts.get(frame_idx, {}))
            state.outputs[frame_idx] = self._decode(state, tracker, frame_idx, step, objs)
            step += 1
            yield (frame_idx, *self._assemble(state, frame_idx))

    @staticmethod
    def _seeds(state: VideoState, start: int, reverse: bool) -> List[Tuple[int, List[int]]]:
        """The frames to feed before propagating from ``start``: for each object without a prompt
        on ``start`` but with prompts behind it (in the direction of travel), its nearest one."""
        seeds: Dict[int, List[int]] = {}
        for obj in state.obj_ids:
            if obj in state.prompts.get(start, {}):
                continue
            behind = [f for f, p in state.prompts.items()
                      if obj in p and (f > start if reverse else f < start)]
            if behind:
                seeds.setdefault(min(behind) if reverse else max(behind), []).append(obj)
        return sorted(seeds.items(), reverse=reverse)

    # ------------------------------------------------------------------ streaming
    @torch.no_grad()
    def track(self, state: VideoState, frame: np.ndarray) -> Tuple[List[int], torch.Tensor]:
        """The next frame (RGB ``uint8 [H, W, 3]``) of a stream -> ``(obj_ids, masks
        [K, 1, H, W])`` (module docstring). Constant memory: the state holds this frame, its
        masks and the bounded memory."""
        if not state.streaming:
            raise ValueError('track: the state is not a stream; make one with start_stream()')
        frame = check_image(frame, f'stream frame {state.frame_idx + 1}', self.max_input_pixels)
        if state.video_height is None:
            state.video_height, state.video_width = frame.shape[:2]
        elif frame.shape[:2] != (state.video_height, state.video_width):
            # the memory holds features of the first size (see the module docstring)
            raise ValueError(f'track: stream frame {state.frame_idx + 1} is {frame.shape[1]}x'
                             f'{frame.shape[0]} (WxH) but the stream is {state.video_width}x'
                             f'{state.video_height}; a stream keeps one frame size: start a new '
                             'one (start_stream) for the new size')
        state.current = self._process(frame, state.offload_to_cpu)
        if state.frame_meta is None:
            state.frame_meta = dict(state.current.metainfo)
        state.frame_idx += 1
        state.step += 1
        state.prompts.clear()  # prompts and masks belong to their frame
        inputs, sample = self._frame(state, state.frame_idx)
        res = self._track_step(state.tracker, inputs, sample, state.step, grid=True)
        state.outputs = {state.frame_idx: self._keep(state, res)}
        return self._assemble(state, state.frame_idx)

    # ------------------------------------------------------------------ internals
    def _process(self, frame: np.ndarray, offload_to_cpu: bool) -> ProcessedFrame:
        """An RGB frame -> the model's input (its data preprocessor expects the loader's BGR)."""
        chw = torch.from_numpy(np.ascontiguousarray(frame[..., ::-1].transpose(2, 0, 1)))
        inputs, sample = self.model.preprocess_frame(chw)
        return ProcessedFrame(inputs.cpu() if offload_to_cpu else inputs, dict(sample.metainfo))

    def _frame(self, state: VideoState, frame_idx: int) -> Tuple[torch.Tensor, DetDataSample]:
        pf = state.current if state.streaming else state.source[frame_idx]
        return pf.inputs.to(self.device), DetDataSample(metainfo=dict(pf.metainfo))

    @staticmethod
    def _prompt_base(state: VideoState, frame_idx: int, obj_id: int
                     ) -> Tuple[Optional[ObjectPrompt], Optional[torch.Tensor]]:
        """The object's prompt on the frame (None: none yet) and the mask a new prompt there
        corrects: the prompt's own, else the object's current mask on the frame (tracked)."""
        old = state.prompts.get(frame_idx, {}).get(obj_id)
        return old, old.prior if old is not None else state.outputs.get(frame_idx, {}).get(obj_id)

    @staticmethod
    def _forget(state: VideoState, obj_id: int) -> None:
        """Drop an object and its masks (its prompts are the caller's)."""
        state.obj_ids.remove(obj_id)
        for masks in state.outputs.values():
            masks.pop(obj_id, None)

    def _set_prompt(self, state: VideoState, frame_idx: int, obj_id: int, prompt: ObjectPrompt
                    ) -> Tuple[int, List[int], torch.Tensor]:
        """Store a prompt and decode the object on its frame: offline alone (a throwaway tracker;
        objects are decoded independently, so the others' masks there stand); streaming, it
        re-prompts the current frame."""
        state.prompts.setdefault(frame_idx, {})[obj_id] = prompt
        if obj_id not in state.obj_ids:
            state.obj_ids.append(obj_id)
        if state.streaming:
            out = self._decode(state, state.tracker, frame_idx, state.step, [obj_id],
                               track_others=False)
        else:
            out = self._decode(state, self.model.new_tracker(), frame_idx, 0, [obj_id])
        state.outputs.setdefault(frame_idx, {}).update(out)
        return (frame_idx, *self._assemble(state, frame_idx))

    def _decode(self, state: VideoState, tracker: StreamingTracker, frame_idx: int, step: int,
                objs: List[int], track_others: bool = True) -> Dict[int, torch.Tensor]:
        """One ``track_step`` on a frame with the prompts of ``objs`` there -> the decoded
        objects' mask-grid logits, as the state keeps them (``_keep``)."""
        inputs, sample = self._frame(state, frame_idx)
        if objs:
            sample.prompts = self._frame_prompts(state, frame_idx, objs, sample)
        return self._keep(state, self._track_step(tracker, inputs, sample, step,
                                                  track_others=track_others, grid=True))

    def _track_step(self, *args, **kwargs) -> InstanceData:
        """``RapSAM.track_step`` at the predictor's precision."""
        with autocast(self.device, self.precision):
            return self.model.track_step(*args, **kwargs)

    @staticmethod
    def _keep(state: VideoState, res: InstanceData) -> Dict[int, torch.Tensor]:
        """``track_step(grid=True)``'s instances -> object id -> float16 mask-grid logits
        ``[h, w]`` (on the CPU with ``offload_to_cpu``)."""
        logits = res.mask_logits.clamp(-_LOGIT_CAP, _LOGIT_CAP).to(torch.float16)
        if state.offload_to_cpu:
            logits = logits.cpu()
        return {int(i): logits[j] for j, i in enumerate(res.instances_id.tolist())}

    def _frame_prompts(self, state: VideoState, frame_idx: int, objs: List[int],
                       sample: DetDataSample) -> InstanceData:
        """The stored prompts of ``objs`` on a frame, scaled to the processed frame. A mask to
        correct (``ObjectPrompt.prior``) is the mask prompt where none is given: its logits > 0
        at input resolution, as the model's interactive training feeds a previous prediction."""
        sx, sy = sample.scale_factor
        records = [state.prompts[frame_idx][o] for o in objs]
        scale = torch.tensor([sx, sy])
        boxes = torch.stack([r.box * scale.repeat(2) if r.box is not None else torch.zeros(4)
                             for r in records])
        masks = None
        if any(r.mask is not None or r.prior is not None for r in records):
            img_hw = tuple(sample.img_shape[:2])

            def mask_prompt(r: ObjectPrompt) -> torch.Tensor:
                if r.mask is not None:
                    return F.interpolate(r.mask[None, None], size=img_hw, mode='bilinear',
                                         align_corners=False)[0, 0]
                if r.prior is not None:
                    return (to_output_res(r.prior[None].float().cpu(), sample,
                                          tuple(sample.batch_input_shape), rescale=False)[0] > 0).float()
                return torch.zeros(img_hw)

            masks = torch.stack([mask_prompt(r) for r in records])
        texts = [r.text for r in records] if any(r.text for r in records) else None
        prompts = build_prompts(points=[r.points * scale for r in records],
                                point_labels=[r.labels for r in records], bboxes=boxes,
                                box_valid=[r.box is not None for r in records], masks=masks,
                                texts=texts)
        prompts.obj_ids = torch.tensor(objs, dtype=torch.long)
        sample.prompts = prompts
        pad_prompt_masks([sample], sample.batch_input_shape)
        return sample.prompts.to(self.device)

    def _assemble(self, state: VideoState, frame_idx: int) -> Tuple[List[int], torch.Tensor]:
        """Every object's mask on a frame -> ``(obj_ids, [K, 1, H, W])`` in ``state.obj_ids``
        order at the video's size: bool, or logits with ``return_logits`` (``NO_OBJ_SCORE`` for
        an object without a mask there), resampled as the module docstring says."""
        obj_ids = list(state.obj_ids)
        size = (len(obj_ids), 1, state.video_height, state.video_width)
        masks = (torch.full(size, NO_OBJ_SCORE, device=self.device) if self.return_logits
                 else torch.zeros(size, dtype=torch.bool, device=self.device))
        outputs = state.outputs.get(frame_idx, {})
        present = [k for k, obj in enumerate(obj_ids) if obj in outputs]
        if not present:
            return obj_ids, masks
        # float32 before the stack: the kept float16 grids under a caller's bf16 autocast are a
        # mix autocast's type promotion of ``stack`` rejects on CPU
        grid = torch.stack([outputs[obj_ids[k]].float() for k in present]).to(self.device)
        sample = DetDataSample(metainfo=state.frame_meta)
        input_hw = tuple(state.frame_meta['batch_input_shape'])
        if not self.return_logits:  # no float image: see mask_geometry.to_output_masks
            masks[present, 0] = to_output_masks(grid, sample, input_hw, rescale=True)
            return obj_ids, masks
        for row, k in enumerate(present):  # one float plane at a time
            masks[k, 0] = to_output_res(grid[row:row + 1], sample, input_hw, rescale=True)[0]
        return obj_ids, masks

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _check_obj_id(obj_id: int) -> None:
        check_int(obj_id, 'obj_id')

    @staticmethod
    def _check_known(state: VideoState, obj_id: int) -> None:
        if obj_id not in state.obj_ids:
            raise KeyError(f'unknown object id {obj_id!r}; the video has objects {state.obj_ids}')

    @staticmethod
    def _check_frame(state: VideoState, frame_idx: int) -> None:
        check_int(frame_idx, 'frame_idx')
        if state.streaming:
            if state.frame_idx < 0:
                raise ValueError('the stream has no frame yet: call track(state, frame) first')
            if frame_idx != state.frame_idx:
                raise ValueError(f'a stream takes prompts on its current frame {state.frame_idx}, '
                                 f'got frame_idx={frame_idx}')
            return
        n = state.num_frames
        if frame_idx < 0 or (n is not None and frame_idx >= n):
            raise IndexError(f'frame_idx {frame_idx} out of range: the video has '
                             f'{n if n is not None else "an unknown number of"} frames')

    @staticmethod
    def _check_points(state: VideoState, points: Optional[ArrayLike], labels: Optional[ArrayLike],
                      normalize_coords: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        if points is None:
            if labels is not None:
                raise ValueError('labels given without points')
            return torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)
        size = (state.video_height, state.video_width)
        pts, labs = check_points(points, labels, size, 'points', not normalize_coords,
                                 allowed_labels=(1, 0), labels_name='labels')
        if len(pts) != 1:
            raise ValueError(f'points must be [P, 2] for one object, got shape {tuple(pts.shape)}')
        return _to_pixels(state, pts[0], normalize_coords), torch.as_tensor(labs[0])

    @staticmethod
    def _check_box(state: VideoState, box: Optional[ArrayLike], normalize_coords: bool
                   ) -> Optional[torch.Tensor]:
        if box is None:
            return None
        b = check_boxes(box, (state.video_height, state.video_width), 'box', not normalize_coords)
        if len(b) != 1:
            raise ValueError(f'box must be one x1, y1, x2, y2, got shape {tuple(b.shape)}')
        return _to_pixels(state, b.reshape(2, 2), normalize_coords).reshape(4)


def _to_pixels(state: VideoState, xy: np.ndarray, normalize_coords: bool) -> torch.Tensor:
    """Checked ``[N, 2]`` (x, y) in pixels (``normalize_coords``) or in [0, 1] -> pixels."""
    pix = torch.as_tensor(xy)
    return pix if normalize_coords else pix * pix.new_tensor([state.video_width, state.video_height])


def _forward_frames(source: VideoSource, start: int, stop: Optional[int]) -> Iterator[int]:
    """Frame indices from ``start`` to ``stop`` (inclusive; None: the end), for sources whose
    length may only be known at their end (iterators)."""
    idx = start
    while (stop is None or idx <= stop) and source.has_frame(idx):
        yield idx
        idx += 1


__all__ = ['FastSAM2VideoPredictor', 'VideoState', 'ObjectPrompt', 'ProcessedFrame', 'NO_OBJ_SCORE']
