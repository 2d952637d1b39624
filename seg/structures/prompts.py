"""The prompt container shared by datasets, preprocessors, heads and predictors.

A data sample's prompts live in ``data_sample.prompts``, an ``InstanceData`` with one row per prompted
object (N rows). Coordinates are pixels ``(x, y)`` in the frame of the image that was packed into
``inputs`` (the same frame as ``gt_instances.bboxes``); a preprocessor that resizes the image scales
them with it (``scale_prompts``). Fields:

- ``points``       float [N, P, 2]  click coordinates, padded to P points per object
- ``point_labels`` long  [N, P]     1 positive, 0 negative, -1 padding (ignored)
- ``bboxes``       float [N, 4]     box prompt xyxy (zeros where ``box_valid`` is False)
- ``box_valid``    bool  [N]        which rows carry a box
- ``masks``        float [N, H, W]  optional mask prompt (1 inside), e.g. a VOS first-frame mask
- ``texts``        list[str] (N)    optional text prompt per object ('' = none)
- ``gt_ids``       long  [N]        row of ``gt_instances`` the prompt was drawn from (-1: none);
                                    training targets for the prompt queries
- ``obj_ids``      long  [N]        optional object ids for video (e.g. DAVIS ids 1..K): results
                                    carry them as ``instances_id``; a prompt with the id of a
                                    tracked object re-prompts it, a new id adds an object
"""
from typing import Optional, Sequence

import torch
from mmengine.structures import InstanceData

POSITIVE, NEGATIVE, PADDING = 1, 0, -1


def build_prompts(points: Optional[Sequence] = None,
                  point_labels: Optional[Sequence] = None,
                  bboxes: Optional[Sequence] = None,
                  box_valid: Optional[Sequence[bool]] = None,
                  masks: Optional[torch.Tensor] = None,
                  texts: Optional[Sequence[str]] = None,
                  gt_ids: Optional[Sequence[int]] = None) -> InstanceData:
    """Build a validated prompt ``InstanceData`` from any subset of prompt kinds.

    ``points`` is [N, P, 2] (or a ragged list of per-object point lists, padded here) and needs
    ``point_labels`` of matching shape. ``box_valid`` marks which rows of ``bboxes`` are real boxes
    (default: all). At least one kind must be given.
    """
    n_rows = [len(x) for x in (points, bboxes, masks, texts) if x is not None]
    if not n_rows:
        raise ValueError('build_prompts: give at least one of points, bboxes, masks or texts')
    if len(set(n_rows)) != 1:
        raise ValueError(f'build_prompts: prompt kinds disagree on the number of objects: {n_rows}')
    n = n_rows[0]
    out = InstanceData()
    if points is not None:
        if point_labels is None:
            raise ValueError('build_prompts: points given without point_labels')
        out.points, out.point_labels = _pad_points(points, point_labels)
    else:
        out.points = torch.zeros(n, 0, 2)
        out.point_labels = torch.zeros(n, 0, dtype=torch.long)
    if bboxes is not None:
        b = torch.as_tensor(bboxes, dtype=torch.float32).reshape(-1, 4)
        if len(b) != n:
            raise ValueError(f'build_prompts: bboxes must be [N, 4], got {tuple(b.shape)}')
        valid = (torch.ones(n, dtype=torch.bool) if box_valid is None
                 else torch.as_tensor(box_valid, dtype=torch.bool).reshape(-1))
        if len(valid) != n:
            raise ValueError(f'build_prompts: box_valid has {len(valid)} entries for {n} objects')
        if ((b[valid, 2] < b[valid, 0]) | (b[valid, 3] < b[valid, 1])).any():
            raise ValueError(f'build_prompts: bboxes must be xyxy with x2 >= x1, y2 >= y1: {b.tolist()}')
        out.bboxes, out.box_valid = b * valid[:, None], valid
    else:
        if box_valid is not None:
            raise ValueError('build_prompts: box_valid given without bboxes')
        out.bboxes, out.box_valid = torch.zeros(n, 4), torch.zeros(n, dtype=torch.bool)
    if masks is not None:
        m = torch.as_tensor(masks).float()
        if m.dim() != 3:
            raise ValueError(f'build_prompts: masks must be [N, H, W], got {tuple(m.shape)}')
        out.masks = m
    if texts is not None:
        out.texts = [str(t) for t in texts]
    out.gt_ids = (torch.as_tensor(gt_ids, dtype=torch.long) if gt_ids is not None
                  else torch.full((n, ), -1, dtype=torch.long))
    return out


def _pad_points(points: Sequence, labels: Sequence) -> tuple:
    """Pad ragged per-object point lists to [N, P, 2] with label -1."""
    if isinstance(points, torch.Tensor):
        pts = points.float()
        lab = torch.as_tensor(labels, dtype=torch.long)
        if pts.dim() != 3 or pts.shape[-1] != 2 or lab.shape != pts.shape[:2]:
            raise ValueError(f'build_prompts: points must be [N, P, 2] with labels [N, P], got '
                             f'{tuple(pts.shape)} and {tuple(lab.shape)}')
    else:
        if len(points) != len(labels):
            raise ValueError('build_prompts: points and point_labels differ in number of objects')
        p_max = max((len(p) for p in points), default=0)
        pts = torch.zeros(len(points), p_max, 2)
        lab = torch.full((len(points), p_max), PADDING, dtype=torch.long)
        for i, (p, obj_labels) in enumerate(zip(points, labels)):
            if len(p) != len(obj_labels):
                raise ValueError(f'build_prompts: object {i} has {len(p)} points but '
                                 f'{len(obj_labels)} labels')
            if len(p):
                pts[i, :len(p)] = torch.as_tensor(p, dtype=torch.float32).reshape(-1, 2)
                lab[i, :len(p)] = torch.as_tensor(obj_labels, dtype=torch.long)
    if not torch.isin(lab, torch.tensor([POSITIVE, NEGATIVE, PADDING])).all():
        raise ValueError(f'build_prompts: point labels must be 1 (pos), 0 (neg) or -1 (pad), got '
                         f'{lab.unique().tolist()}')
    return pts, lab


def scale_prompts(prompts: InstanceData, scale_x: float, scale_y: float) -> InstanceData:
    """Return a copy of ``prompts`` with point and box coordinates scaled (image resize)."""
    out = prompts.clone()
    s = prompts.points.new_tensor([scale_x, scale_y])
    out.points = prompts.points * s
    out.bboxes = prompts.bboxes * s.repeat(2)
    return out
