"""Adapter that lets the interactive click protocol (``seg.evaluation.interactive``) drive a model."""
from typing import Optional, Sequence

import numpy as np

from seg.evaluation.interactive import Click
from .predictor import SegPredictor


class ModelClickPredictor:
    """``(image, clicks, prev_logits, box=None) -> logits``, the ``InteractivePredictor`` protocol,
    for a RapSAM / FastSAM2 model: every click so far becomes a point prompt of one object, the
    previous round's mask (``prev_logits > 0``) its mask prompt (as RITM-style click models feed
    it back), ``box`` a box prompt.

    Args:
        predictor: the ``SegPredictor`` wrapping the model.
        feed_prev_mask: give the previous prediction back as a mask prompt.
    """

    def __init__(self, predictor: SegPredictor, feed_prev_mask: bool = True) -> None:
        self.predictor = predictor
        self.feed_prev_mask = feed_prev_mask

    def __call__(self, image: np.ndarray, clicks: Sequence[Click], prev_logits: Optional[np.ndarray],
                 box: Optional[Sequence[float]] = None) -> np.ndarray:
        if not clicks and box is None:
            raise ValueError('ModelClickPredictor: needs at least one click or a box')
        kwargs = {}
        if clicks:
            kwargs.update(points=[[[c.x, c.y] for c in clicks]],
                          point_labels=[[int(c.is_positive) for c in clicks]])
        if box is not None:
            kwargs['boxes'] = [list(map(float, box))]
        if self.feed_prev_mask and prev_logits is not None and (prev_logits > 0).any():
            kwargs['masks'] = (np.asarray(prev_logits) > 0)[None].astype(np.float32)
        result = self.predictor.prompt(image, **kwargs)
        return result.pred_instances.mask_logits[0].float().cpu().numpy()


def build_click_predictor(config: str, checkpoint: Optional[str] = None, device: str = 'cpu',
                          image_size: Optional[int] = 1024, feed_prev_mask: bool = True
                          ) -> ModelClickPredictor:
    """Factory for ``tools/evaluation/eval_interactive.py --predictor
    seg.apis.click_predictor:build_click_predictor --predictor-kwargs '{"config": ..., "checkpoint": ...}'``."""
    return ModelClickPredictor(SegPredictor.from_config(config, checkpoint, device, image_size),
                               feed_prev_mask)
