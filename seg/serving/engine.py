"""The model side of the server: one model, the predictors over it, and the micro-batched calls.

Each session owns a ``FastSAM2ImagePredictor`` over the shared model holding the embedding of the
image / video frame it is prompted on; video and stream sessions also own a ``VideoState`` of
the shared ``FastSAM2VideoPredictor``. Every model call goes through the ``MicroBatcher``'s worker thread:

- ``encode``: the embeddings of images / frames, batched by image size (one backbone pass);
- ``decode``: a prompt decode of one object on a session's embedded image / frame; concurrent decodes with the
  same network-input size, prompt kinds and output mode are ONE ``predict_batch`` over the
  stacked embeddings (the TaskRouter's depth depends on the prompt kinds, so only equal kinds
  share a forward and a batched result equals the unbatched one);
- ``call``: anything else (propagation steps, stream frames and prompts), one at a time. A
  video step carries its tracker's state (memory, token-pruner cache, regional encoder), which
  the model reads per video, so steps of different videos are not stacked; they interleave frame
  by frame on the worker, so one long propagation does not hold the others back.
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np
import torch

from seg.apis.image_predictor import DEFAULT_IMAGE_SIZE, FastSAM2ImagePredictor, build_model
from seg.apis.video_predictor import FastSAM2VideoPredictor

from .batcher import MicroBatcher


@dataclass
class ImagePrompt:
    """The effective prompt of one object on an image, in image pixels (what ``predict`` takes)."""
    points: List[List[float]] = field(default_factory=list)
    labels: List[int] = field(default_factory=list)
    box: Optional[List[float]] = None
    text: Optional[str] = None
    mask: Optional[np.ndarray] = None  # bool [H, W]

    @property
    def kinds(self) -> FrozenSet[str]:
        """The prompt types present (the TaskRouter's input)."""
        kinds = set()
        if self.points:
            kinds.add('point')
        if self.box is not None:
            kinds.add('box')
        if self.mask is not None:
            kinds.add('mask')
        if self.text:
            kinds.add('text')
        return frozenset(kinds)

    @property
    def multimask(self) -> bool:
        """A lone click is ambiguous: decode SAM2's 3 candidates and keep the best."""
        return len(self.points) == 1 and self.box is None and self.mask is None


class ModelEngine:
    """The shared model, its video predictor and the batched calls (see the module docstring).

    Args:
        model: a built FastSAM2 / RapSAM model with a streaming memory.
        batcher: the micro-batcher whose worker runs every call (started by the app).
        info: what ``GET /model`` reports (config, checkpoint, device, image size).
    """

    def __init__(self, model: torch.nn.Module, batcher: MicroBatcher,
                 info: Optional[Dict[str, Any]] = None) -> None:
        self.model = model.eval()
        self.video = FastSAM2VideoPredictor(self.model)
        self.batcher = batcher
        self.info = dict(info or {})
        batcher.register('encode', self._encode_batch, batched=True)
        batcher.register('decode', self._decode_batch, batched=True)
        batcher.register('call', lambda fns: [fns[0]()], batched=False)

    @classmethod
    def from_config(cls, config: str, checkpoint: Optional[str] = None, device: str = 'cpu',
                    image_size: Optional[int] = DEFAULT_IMAGE_SIZE, window_ms: float = 5.0,
                    max_batch: int = 32) -> 'ModelEngine':
        """Build the config's model (a LOCAL checkpoint; None: random weights, with a warning)."""
        model = build_model(config, checkpoint, device, image_size)
        info = dict(config=str(config), checkpoint=checkpoint, device=str(device),
                    image_size=image_size, random_weights=checkpoint is None,
                    parameters=sum(p.numel() for p in model.parameters()))
        return cls(model, MicroBatcher(window_ms, max_batch), info)

    # ------------------------------------------------------------------ async API
    def new_image_predictor(self) -> FastSAM2ImagePredictor:
        return FastSAM2ImagePredictor(self.model)

    async def set_image(self, predictor: FastSAM2ImagePredictor, rgb: np.ndarray) -> None:
        """The embedding of ``rgb`` into ``predictor`` (batched with other sessions' images)."""
        await self.batcher.run('encode', (predictor, rgb), key=rgb.shape)

    async def predict(self, predictor: FastSAM2ImagePredictor, prompt: ImagePrompt
                      ) -> Tuple[np.ndarray, float]:
        """The mask (bool ``[H, W]``) and predicted IoU of one object on an image session."""
        key = (predictor.low_res_hw, prompt.kinds, prompt.multimask)
        return await self.batcher.run('decode', (predictor, prompt), key=key)

    async def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` on the model's worker thread (video prompts, propagation steps, streams)."""
        return await self.batcher.run('call', fn)

    # ------------------------------------------------------------------ handlers (worker thread)
    def _encode_batch(self, jobs: Sequence[Tuple[FastSAM2ImagePredictor, np.ndarray]]) -> List[None]:
        if len(jobs) == 1:
            predictor, rgb = jobs[0]
            predictor.set_image(rgb)
            return [None]
        batch = self.new_image_predictor()
        batch.set_image_batch([rgb for _, rgb in jobs])  # equal sizes (the batch key): no padding
        for i, (predictor, _) in enumerate(jobs):
            predictor.adopt_image(batch, i)
        return [None] * len(jobs)

    def _decode_batch(self, jobs: Sequence[Tuple[FastSAM2ImagePredictor, ImagePrompt]]
                      ) -> List[Tuple[np.ndarray, float]]:
        args = [_predict_args(p, prompt) for p, prompt in jobs]
        multimask = jobs[0][1].multimask
        if len(jobs) == 1:
            masks, scores, _ = jobs[0][0].predict(**args[0], multimask_output=multimask)
            return [_best(masks, scores)]
        batch = FastSAM2ImagePredictor.stack([p for p, _ in jobs])
        names = ('point_coords', 'point_labels', 'box', 'mask_input', 'text')
        given = {f'{n}_batch': [a[n] for a in args] for n in names}
        given = {k: (None if all(v is None for v in vals) else vals) for k, vals in given.items()}
        masks, scores, _ = batch.predict_batch(**given, multimask_output=multimask)
        return [_best(m, s) for m, s in zip(masks, scores)]


def _predict_args(predictor: FastSAM2ImagePredictor, prompt: ImagePrompt) -> Dict[str, Any]:
    return dict(point_coords=prompt.points or None, point_labels=prompt.labels or None,
                box=prompt.box, text=prompt.text or None,
                mask_input=None if prompt.mask is None else predictor.mask_to_low_res(prompt.mask))


def _best(masks: np.ndarray, scores: np.ndarray) -> Tuple[np.ndarray, float]:
    """The candidate with the highest predicted IoU of ``masks [C, H, W]``, ``scores [C]``."""
    best = int(np.argmax(scores))
    return masks[best].astype(bool), float(scores[best])


__all__ = ['ModelEngine', 'ImagePrompt']
