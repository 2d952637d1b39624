"""Interactive prompt sampling from a ground-truth mask: clicks, a jittered box and a text.

This is the ONE implementation of prompt sampling in FastSAM2: the online pipeline transform
(``GeneratePrompts``) and the offline COCO / YouTube-VIS converters both call ``PromptSampler``, so a
prompt file written offline and prompts drawn during training follow the same distribution.

Coordinates are integer pixel indices ``(x, y)`` stored as floats (``mask[y, x]`` is the clicked
pixel); boxes are ``xyxy`` with an exclusive right/bottom edge, like COCO's ``x + w``.
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from seg.datasets.clip_sampling import as_range
from seg.utils.masks import mask_to_box

DEFAULT_TEMPLATES: Tuple[str, ...] = ('{}', 'a {}', 'the {}', 'a photo of a {}', 'the {} in the image',
                                      'segment the {}')

# A small fixed synonym table (the issue allows one); names are COCO category names after
# ``readable_name``. Unlisted categories use their readable name only.
SYNONYMS: Dict[str, Tuple[str, ...]] = {
    'person': ('person', 'human', 'pedestrian'),
    'bicycle': ('bicycle', 'bike'),
    'car': ('car', 'automobile'),
    'motorcycle': ('motorcycle', 'motorbike'),
    'airplane': ('airplane', 'aeroplane', 'plane'),
    'tv': ('tv', 'television'),
    'couch': ('couch', 'sofa'),
    'cell phone': ('cell phone', 'mobile phone', 'smartphone'),
    'dining table': ('dining table', 'table'),
    'potted plant': ('potted plant', 'houseplant'),
    'sports ball': ('sports ball', 'ball'),
    'laptop': ('laptop', 'notebook computer'),
    'sky': ('sky', 'skyline'),
    'grass': ('grass', 'lawn'),
    'tree': ('tree', 'trees'),
    'road': ('road', 'street'),
}

# COCO-panoptic stuff names carry dataset bookkeeping suffixes ('wall-other-merged'); a text prompt
# should read like what a user would type.
_NAME_SUFFIXES = ('-merged', '-other', '-stuff')


def readable_name(name: str) -> str:
    """Turn a dataset category name into plain words: ``'wall-other-merged' -> 'wall'``."""
    out = name
    for suffix in _NAME_SUFFIXES * 2:  # twice: suffixes stack ('-other-merged')
        if out.endswith(suffix):
            out = out[:-len(suffix)]
    return out.replace('-', ' ').replace('_', ' ').strip()


def category_words(name: str) -> Tuple[str, ...]:
    """All words a text prompt may use for category ``name`` (readable name plus synonyms)."""
    plain = readable_name(name)
    return SYNONYMS.get(plain, (plain, ))


@dataclass(frozen=True)
class PromptSampler:
    """Draw one object's prompt from its binary mask.

    Args:
        num_pos_points: number of positive clicks, an int or an inclusive ``(min, max)`` range.
        num_neg_points: number of negative clicks, an int or an inclusive ``(min, max)`` range.
        point_prob: probability that the object gets clicks at all.
        box_prob: probability that the object gets a box prompt.
        box_jitter: each box side moves outward by ``U(0, box_jitter) * side length``. Outward
            only, so the box always contains the object: a box that cuts the object off would
            teach the model to distrust box evidence.
        text_prob: probability that the object gets a text prompt (only when a class name is given).
        templates: text templates with one ``{}`` for the category word.
        interior_power: positive clicks are drawn with probability ``dist ** interior_power``, where
            ``dist`` is the distance to the mask border; 0 samples uniformly inside the mask.
        neg_band: negatives are drawn in the ring around the mask of width
            ``max(neg_band_min, neg_band * max(box_w, box_h))`` pixels, i.e. where a user would
            click to correct a leaking prediction.
        neg_band_min: minimum ring width in pixels.

    At least one prompt kind is always produced: if the coin flips give nothing, the object
    gets clicks.
    """
    num_pos_points: Sequence[int] = (1, 3)
    num_neg_points: Sequence[int] = (0, 2)
    point_prob: float = 1.0
    box_prob: float = 0.5
    box_jitter: float = 0.1
    text_prob: float = 0.5
    templates: Sequence[str] = field(default=DEFAULT_TEMPLATES)
    interior_power: float = 1.0
    neg_band: float = 0.1
    neg_band_min: int = 5

    def __post_init__(self) -> None:
        object.__setattr__(self, 'num_pos_points',
                           as_range(self.num_pos_points, 'PromptSampler: num_pos_points', 0))
        object.__setattr__(self, 'num_neg_points',
                           as_range(self.num_neg_points, 'PromptSampler: num_neg_points', 0))
        object.__setattr__(self, 'templates', tuple(self.templates))
        for name in ('point_prob', 'box_prob', 'text_prob'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'PromptSampler: {name} must be in [0, 1], got {getattr(self, name)}')
        if self.box_jitter < 0 or self.interior_power < 0 or self.neg_band < 0:
            raise ValueError('PromptSampler: box_jitter, interior_power and neg_band must be >= 0')
        if self.num_pos_points[1] < 1 and self.point_prob > 0:
            raise ValueError('PromptSampler: clicks need at least one positive point (num_pos_points)')
        bad = [t for t in self.templates if t.count('{}') != 1]
        if not self.templates or bad:
            raise ValueError(f'PromptSampler: templates must each contain exactly one "{{}}", got {bad}')

    def __call__(self, mask: np.ndarray, rng: np.random.Generator,
                 class_name: Optional[str] = None) -> dict:
        """Sample a prompt for a non-empty binary ``mask`` [H, W].

        Returns a dict with ``points`` float32 [P, 2], ``point_labels`` int64 [P] (1 pos, 0 neg),
        ``box`` float32 [4] or None, and ``text`` str ('' when no text was drawn).
        """
        mask = np.asarray(mask).astype(bool)
        if mask.ndim != 2:
            raise ValueError(f'PromptSampler: mask must be [H, W], got shape {mask.shape}')
        if not mask.any():
            raise ValueError('PromptSampler: cannot prompt an empty mask')
        use_points = rng.random() < self.point_prob
        use_box = rng.random() < self.box_prob
        use_text = class_name is not None and rng.random() < self.text_prob
        if not (use_points or use_box or use_text):
            use_points = True

        points = np.zeros((0, 2), np.float32)
        labels = np.zeros((0, ), np.int64)
        if use_points:
            pos = self.positive_points(mask, rng.integers(max(self.num_pos_points[0], 1),
                                                          self.num_pos_points[1] + 1), rng)
            neg = self.negative_points(mask, rng.integers(self.num_neg_points[0],
                                                          self.num_neg_points[1] + 1), rng)
            points = np.concatenate([pos, neg]).astype(np.float32)
            labels = np.concatenate([np.ones(len(pos), np.int64), np.zeros(len(neg), np.int64)])
        box = self.jittered_box(mask, rng) if use_box else None
        text = self.text(class_name, rng) if use_text else ''
        return dict(points=points, point_labels=labels, box=box, text=text)

    def positive_points(self, mask: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
        """``num`` distinct clicks inside ``mask`` (fewer if the mask is smaller), interior-biased."""
        # Distance to the nearest background pixel; padding by one makes the image border count
        # as background so clicks also avoid objects' cut edges.
        padded = np.pad(mask.astype(np.uint8), 1)
        dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
        flat = np.flatnonzero(mask)
        weights = dist.ravel()[flat].astype(np.float64) ** self.interior_power
        chosen = rng.choice(flat, size=min(int(num), len(flat)), replace=False,
                            p=weights / weights.sum())
        return self._to_xy(chosen, mask.shape[1])

    def negative_points(self, mask: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
        """``num`` distinct clicks in the ring just outside ``mask`` (none if there is no room)."""
        if num == 0:
            return np.zeros((0, 2), np.float32)
        x1, y1, x2, y2 = mask_to_box(mask)
        band = max(self.neg_band_min, int(round(self.neg_band * max(x2 - x1, y2 - y1))))
        # distance of every outside pixel to the mask: O(H*W) whatever the band width
        dist_out = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
        ring = ~mask & (dist_out <= band)
        flat = np.flatnonzero(ring)
        if len(flat) == 0:
            return np.zeros((0, 2), np.float32)
        chosen = rng.choice(flat, size=min(int(num), len(flat)), replace=False)
        return self._to_xy(chosen, mask.shape[1])

    def jittered_box(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The mask's tight box with each side pushed outward, clipped to the image."""
        x1, y1, x2, y2 = mask_to_box(mask)
        w, h = x2 - x1, y2 - y1
        grow = rng.uniform(0.0, self.box_jitter, size=4) * np.array([w, h, w, h])
        box = np.array([x1 - grow[0], y1 - grow[1], x2 + grow[2], y2 + grow[3]], np.float32)
        return np.clip(box, 0, [mask.shape[1], mask.shape[0]] * 2).astype(np.float32)

    def text(self, class_name: str, rng: np.random.Generator) -> str:
        """A template filled with the category's readable name or one of its synonyms."""
        words = category_words(class_name)
        return self.templates[rng.integers(len(self.templates))].format(words[rng.integers(len(words))])

    @staticmethod
    def _to_xy(flat_idx: np.ndarray, width: int) -> np.ndarray:
        ys, xs = np.divmod(np.asarray(flat_idx, dtype=np.int64), width)
        return np.stack([xs, ys], axis=1).astype(np.float32).reshape(-1, 2)
