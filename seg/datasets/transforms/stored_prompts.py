"""Offline prompts (``stored_prompts`` of the prompt-file datasets) -> prompts of the packed image."""
from typing import Optional, Tuple

import numpy as np
from mmengine.structures import InstanceData

from seg.registry import TRANSFORMS
from seg.structures.prompts import PADDING

from .prompt_generation import GeneratePrompts


def map_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Pixel indices ``[P, 2]`` (x, y) through a 3x3 homography, pixel centres to pixel centres
    (an index ``x`` is the continuous coordinate ``x + 0.5``: a flip maps ``x`` to ``w - 1 - x``)."""
    xy1 = np.concatenate([points + 0.5, np.ones((len(points), 1), np.float32)], 1)
    out = xy1 @ matrix.T
    return out[:, :2] / out[:, 2:] - 0.5


def map_box(box: np.ndarray, matrix: np.ndarray, shape: Tuple[int, int]) -> Optional[np.ndarray]:
    """An xyxy box (continuous edges) through a homography, clipped to ``shape``; None if empty."""
    corners = np.array([[box[0], box[1], 1], [box[2], box[3], 1]], np.float32) @ matrix.T
    corners = corners[:, :2] / corners[:, 2:]
    (x1, y1), (x2, y2) = corners.min(0), corners.max(0)
    h, w = shape
    x1, x2 = np.clip([x1, x2], 0, w)
    y1, y2 = np.clip([y1, y2], 0, h)
    return np.array([x1, y1, x2, y2], np.float32) if x2 > x1 and y2 > y1 else None


@TRANSFORMS.register_module()
class LoadStoredPrompts(GeneratePrompts):
    """Use the prompts stored offline (``fastsam2_interactive.json`` / ``ytvis_interactive_meta.pkl``,
    attached by ``CocoPanopticPromptFileDataset`` / ``YouTubeVISClipFileDataset``) instead of
    drawing new ones.

    Place it where ``GeneratePrompts`` goes: after every geometric transform (after
    ``TransformBroadcaster`` for clips). The stored coordinates are in the original image; they are
    mapped through ``results['homography_matrix']``, which mmdet's ``Resize`` / ``RandomFlip`` /
    ``RandomCrop`` record. Points that leave the image become padding, boxes are clipped, and a row
    whose object is gone (cropped away, empty mask) or that keeps no prompt is dropped.

    Objects are matched to the segmentation targets (``gt_ids``, as ``GeneratePrompts`` indexes
    them) by id: things through ``results['gt_instances_ids']`` (``LoadCocoPanopticAnnotations``
    records the segment ids, ``LoadVideoFrameAnnotations`` the YouTube-VIS annotation ids; mmdet's
    ``RandomCrop`` drops ids with their boxes), stuff segments through their label.

    The stored rows carry every prompt kind (the offline sampler draws points, a box and a text per
    object); each kind is kept with its probability (at least one kind per row), so training sees
    the same mix of prompt types as with online prompts.

    Args:
        max_objects: at most this many rows per image / frame (a random subset).
        num_thing_classes: as ``GeneratePrompts`` (images: enables stuff rows).
        point_prob, box_prob, text_prob: probability of keeping a row's points / box / text.
        seed: as ``GeneratePrompts``.

    Adds ``results['prompts']``: an ``InstanceData`` (images; absent when no row is left) or a list
    with one entry per frame (clips; None on frames without prompts).
    """

    def __init__(self,
                 max_objects: int = 10,
                 num_thing_classes: Optional[int] = None,
                 point_prob: float = 1.0,
                 box_prob: float = 0.5,
                 text_prob: float = 0.5,
                 seed: Optional[int] = None) -> None:
        super().__init__(max_objects=max_objects, num_thing_classes=num_thing_classes, seed=seed)
        for name, p in (('point_prob', point_prob), ('box_prob', box_prob), ('text_prob', text_prob)):
            if not 0 <= p <= 1:
                raise ValueError(f'LoadStoredPrompts: {name} must be in [0, 1], got {p}')
        self.probs = dict(points=point_prob, box=box_prob, text=text_prob)

    def transform(self, results: dict) -> dict:
        if 'stored_prompts' not in results:
            raise KeyError('LoadStoredPrompts: no results["stored_prompts"]; use a prompt-file '
                           'dataset (CocoPanopticPromptFileDataset / YouTubeVISClipFileDataset)')
        rng = self._rng()
        if isinstance(results['img'], list):  # a clip: per-frame lists after TransformBroadcaster
            per_frame_keys = ('gt_masks', 'gt_bboxes_labels', 'gt_ignore_flags', 'gt_instances_ids',
                              'stored_prompts', 'homography_matrix', 'img_shape')
            prompts = []
            for t in range(len(results['img'])):
                frame = {k: results[k][t] for k in per_frame_keys if k in results}
                prompts.append(self.frame_prompts(frame, rng, stuff=False))
            results['prompts'] = prompts
        else:
            prompts = self.frame_prompts(results, rng, stuff=True)
            if prompts is not None:
                results['prompts'] = prompts
        return results

    def frame_prompts(self, results: dict, rng: np.random.Generator,
                      stuff: bool) -> Optional[InstanceData]:
        """The prompts of one image (or frame) from its stored rows; None when none is left."""
        rows = results['stored_prompts']
        if not rows:
            return None
        if 'gt_instances_ids' not in results:
            raise KeyError('LoadStoredPrompts: no results["gt_instances_ids"] to match the stored '
                           'objects with (load the annotations with LoadCocoPanopticAnnotations / '
                           'LoadVideoFrameAnnotations)')
        gt_of = self.target_ids(results, stuff)
        matrix = results.get('homography_matrix')
        matrix = np.eye(3, dtype=np.float32) if matrix is None else np.asarray(matrix, np.float32)
        shape = tuple(results['img_shape'][:2])
        kept, gt_ids = [], []
        for i in rng.permutation(len(rows)):
            row = rows[i]
            gt = gt_of.get((row['isthing'], row['ann_id'] if row['isthing'] else row['label']))
            if gt is None:
                continue
            prompt = self.map_row(row, matrix, shape, rng)
            if prompt is not None:
                kept.append(prompt)
                gt_ids.append(gt)
            if len(kept) == self.max_objects:
                break
        if not kept:
            return None
        return self.build(kept, gt_ids, texts=True)

    def target_ids(self, results: dict, stuff: bool) -> dict:
        """``(True, instance id)`` / ``(False, stuff label)`` -> ``gt_id`` of every non-empty
        target (``GeneratePrompts.candidates`` order)."""
        ids = np.asarray(results['gt_instances_ids'])
        ignore = np.asarray(results.get('gt_ignore_flags', np.zeros(len(ids), bool)), bool)
        if len(ids) != len(ignore):
            raise ValueError(f'LoadStoredPrompts: {len(ids)} gt_instances_ids for {len(ignore)} '
                             'ground-truth rows')
        kept_rows = np.flatnonzero(~ignore)
        out = {}
        for gt_id, _, label in self.candidates(results if stuff else
                                               {k: v for k, v in results.items() if k != 'gt_seg_map'}):
            if gt_id < len(kept_rows):
                out[(True, int(ids[kept_rows[gt_id]]))] = gt_id
            else:
                out[(False, int(label))] = gt_id
        return out

    def map_row(self, row: dict, matrix: np.ndarray, shape: Tuple[int, int],
                rng: np.random.Generator) -> Optional[dict]:
        """One stored row in the packed frame with its kinds subsampled; None if nothing is left."""
        h, w = shape
        points = np.round(map_points(row['points'], matrix)).astype(np.float32)
        labels = row['point_labels'].copy()
        outside = (points[:, 0] < 0) | (points[:, 0] >= w) | (points[:, 1] < 0) | (points[:, 1] >= h)
        labels[outside] = PADDING
        box = map_box(row['box'], matrix, shape) if row['box'] is not None else None
        available = [k for k, ok in (('points', (labels != PADDING).any()), ('box', box is not None),
                                     ('text', bool(row['text'])))
                     if ok]
        if not available:
            return None
        chosen = [k for k in available if rng.random() < self.probs[k]]
        if not chosen:
            chosen = [available[rng.integers(len(available))]]
        keep_points = 'points' in chosen
        return dict(points=points if keep_points else np.zeros((0, 2), np.float32),
                    point_labels=labels if keep_points else np.zeros(0, np.int64),
                    box=box if 'box' in chosen else None,
                    text=row['text'] if 'text' in chosen else '')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(max_objects={self.max_objects}, '
                f'num_thing_classes={self.num_thing_classes}, probs={self.probs}, seed={self.seed})')
