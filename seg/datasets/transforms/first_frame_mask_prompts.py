"""The semi-supervised VOS reference as prompts: the first frame's ground-truth masks."""
import numpy as np
import torch
from mmcv.transforms import BaseTransform

from seg.registry import TRANSFORMS
from seg.structures import build_prompts


@TRANSFORMS.register_module()
class FirstFrameMaskPrompts(BaseTransform):
    """Prompt every object of a clip's first frame with its ground-truth mask (mask prompt only).

    This is the DAVIS semi-supervised protocol (the first-frame mask is given, nothing else), so
    the same transform serves evaluation and the VOS training that must match it. Run it after
    ``TransformBroadcaster`` (per-frame lists). ``results['prompts']`` becomes one entry per frame:
    an ``InstanceData`` with ``masks [K, H, W]`` (1 inside) and ``gt_ids`` 0..K-1 (rows of that
    frame's ``gt_instances``, which carry the DAVIS object ids) on frame 0, ``None`` elsewhere.

    Args:
        allow_empty: a first frame without any object gets no prompt (a training clip that starts
            where the object is hidden then trains the object queries only). False raises a
            ``ValueError`` naming the frame: an evaluation video needs its reference mask.
    """

    def __init__(self, allow_empty: bool = False) -> None:
        self.allow_empty = allow_empty

    def transform(self, results: dict) -> dict:
        frames = results.get('gt_masks')
        if not frames:
            raise KeyError('FirstFrameMaskPrompts: no per-frame gt_masks; load the annotations '
                           '(LoadVideoFrameAnnotations under TransformBroadcaster) first')
        masks = frames[0].to_ndarray()
        prompts = [None] * len(frames)
        if len(masks):
            prompts[0] = build_prompts(masks=torch.from_numpy(masks.astype(np.float32)),
                                       gt_ids=list(range(len(masks))))
        elif not self.allow_empty:
            where = results['img_path'][0] if 'img_path' in results else 'the first frame'
            raise ValueError(f'FirstFrameMaskPrompts: {where} has no object: the video has no '
                             'reference mask to track')
        results['prompts'] = prompts
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(allow_empty={self.allow_empty})'
