"""FirstFrameMaskPrompts: the semi-supervised VOS reference (first-frame GT masks) as prompts."""
import numpy as np
import pytest
import torch
from mmdet.structures.mask import BitmapMasks

from seg.datasets.transforms import FirstFrameMaskPrompts


def _clip(first_objects=2, frames=3, h=6, w=8):
    masks = []
    for t in range(frames):
        k = first_objects if t == 0 else 2
        m = np.zeros((k, h, w), np.uint8)
        for i in range(k):
            m[i, i:i + 2, t:t + 3] = 1
        masks.append(BitmapMasks(m, h, w))
    return dict(gt_masks=masks, img_path=[f'seq/{t:05d}.jpg' for t in range(frames)])


def test_first_frame_masks_become_mask_prompts():
    results = FirstFrameMaskPrompts()(_clip())
    prompts = results['prompts']
    assert len(prompts) == 3 and prompts[1] is None and prompts[2] is None
    first = prompts[0]
    assert torch.equal(first.masks, torch.from_numpy(_clip()['gt_masks'][0].masks).float())
    assert first.gt_ids.tolist() == [0, 1]
    # a mask prompt only: no clicks, no box
    assert first.points.shape == (2, 0, 2) and not first.box_valid.any()


def test_first_frame_without_object():
    with pytest.raises(ValueError, match=r'seq/00000\.jpg has no object'):
        FirstFrameMaskPrompts()(_clip(first_objects=0))
    results = FirstFrameMaskPrompts(allow_empty=True)(_clip(first_objects=0))
    assert results['prompts'] == [None, None, None]
    with pytest.raises(KeyError, match='LoadVideoFrameAnnotations'):
        FirstFrameMaskPrompts()(dict(img_path=['a.jpg']))
