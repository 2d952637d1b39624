"""Adapter that lets the interactive click protocol (``seg.evaluation.interactive``) drive a model."""
from typing import Optional, Sequence

import numpy as np

from seg.evaluation.interactive import Click

from .image_predictor import DEFAULT_IMAGE_SIZE, FastSAM2ImagePredictor, build_model


class ModelClickPredictor:
    """``(image, clicks, prev_logits, box=None) -> logits``, the ``InteractivePredictor`` protocol,
    for a RapSAM / FastSAM2 model: every click so far becomes a point prompt of one object, the
    previous round's mask its mask prompt (as RITM-style click models feed it back), ``box`` a
    box prompt.

    The image embedding is computed once per image (``FastSAM2ImagePredictor.set_image``, while
    the same array object is passed) and every click re-uses it. The previous round's mask goes
    back as ``mask_input``: the low-res logits of the previous call when ``prev_logits`` is what
    it returned, else ``prev_logits > 0`` moved onto the mask grid.

    Args:
        predictor: a ``FastSAM2ImagePredictor`` (a ``SegPredictor`` is accepted: its image
            predictor is used).
        feed_prev_mask: give the previous prediction back as a mask prompt.
    """

    def __init__(self, predictor, feed_prev_mask: bool = True) -> None:
        self.predictor: FastSAM2ImagePredictor = getattr(predictor, 'image_predictor', predictor)
        self.feed_prev_mask = feed_prev_mask
        self._image_ref: Optional[np.ndarray] = None
        self._last: Optional[tuple] = None  # (full-resolution logits returned, their low-res)

    def __call__(self, image: np.ndarray, clicks: Sequence[Click], prev_logits: Optional[np.ndarray],
                 box: Optional[Sequence[float]] = None) -> np.ndarray:
        """``image``: BGR ``[H, W, 3]`` uint8 (the protocol's loader order)."""
        if not clicks and box is None:
            raise ValueError('ModelClickPredictor: needs at least one click or a box')
        if image is not self._image_ref:
            self.predictor.set_image(image[..., ::-1])  # the predictor takes RGB
            self._image_ref, self._last = image, None
        kwargs = {}
        if clicks:
            kwargs.update(point_coords=[[c.x, c.y] for c in clicks],
                          point_labels=[int(c.is_positive) for c in clicks])
        if box is not None:
            kwargs['box'] = list(map(float, box))
        if self.feed_prev_mask and prev_logits is not None and (prev_logits > 0).any():
            if self._last is not None and prev_logits is self._last[0]:
                kwargs['mask_input'] = self._last[1]
            else:
                kwargs['mask_input'] = self.predictor.mask_to_low_res(np.asarray(prev_logits) > 0)
        logits, _, low = self.predictor.predict(multimask_output=False, return_logits=True,
                                                **kwargs)
        self._last = (logits[0], low)
        return self._last[0]


def build_click_predictor(config: str, checkpoint: Optional[str] = None, device: str = 'cpu',
                          image_size: Optional[int] = DEFAULT_IMAGE_SIZE, feed_prev_mask: bool = True
                          ) -> ModelClickPredictor:
    """Factory for ``tools/evaluation/eval_interactive.py --predictor
    seg.apis.click_predictor:build_click_predictor \
    --predictor-kwargs '{"config": ..., "checkpoint": ...}'``."""
    return ModelClickPredictor(FastSAM2ImagePredictor(
        build_model(config, checkpoint, device, image_size)), feed_prev_mask)
