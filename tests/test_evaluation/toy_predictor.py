"""A deterministic toy interactive predictor for the evaluation tests.

It paints a disk of ``radius`` pixels around each click (+10 logits for positive clicks, -10 for
negative ones) on top of its previous logits, and a filled box for a box prompt, so every
protocol step can be predicted by hand.
"""
from typing import List, Optional, Sequence

import numpy as np

from seg.evaluation.interactive import Click

INSIDE, OUTSIDE = 10.0, -10.0


class DiskPredictor:
    """``(image, clicks, prev_logits, box=None) -> logits``; records what it was given."""

    def __init__(self, radius: int = 5) -> None:
        self.radius = radius
        self.calls: List[dict] = []

    def __call__(self, image: np.ndarray, clicks: Sequence[Click],
                 prev_logits: Optional[np.ndarray],
                 box: Optional[Sequence[float]] = None) -> np.ndarray:
        self.calls.append({'clicks': list(clicks), 'prev_logits': prev_logits, 'box': box})
        h, w = image.shape[:2]
        if prev_logits is None:
            logits = np.full((h, w), OUTSIDE, dtype=np.float32)
        else:
            logits = np.array(prev_logits, dtype=np.float32)
        if box is not None:
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            logits[y1:y2, x1:x2] = INSIDE
        if clicks:
            c = clicks[-1]
            yy, xx = np.ogrid[:h, :w]
            disk = (yy - c.y) ** 2 + (xx - c.x) ** 2 <= self.radius ** 2
            logits[disk] = INSIDE if c.is_positive else OUTSIDE
        return logits
