"""LoadStoredPrompts: stored (original-image) prompts through flips, resizes and crops, matched to
their targets by id; kinds subsampled; rows of objects that are gone dropped."""
import numpy as np
import pytest
import torch
from mmdet.structures.mask import BitmapMasks

from seg.datasets.transforms.stored_prompts import LoadStoredPrompts, map_box, map_points

FLIP_W10 = np.array([[-1, 0, 10], [0, 1, 0], [0, 0, 1]], np.float32)  # mmdet's horizontal flip


def test_pixel_indices_and_box_edges_map_exactly():
    pts = np.array([[0, 0], [9, 4]], np.float32)
    assert map_points(pts, FLIP_W10).tolist() == [[9, 0], [0, 4]]  # index x -> w - 1 - x
    scale2 = np.diag([2, 2, 1]).astype(np.float32)
    assert map_points(np.array([[3, 1]], np.float32), scale2).tolist() == [[6.5, 2.5]]  # centres
    box = np.array([2, 1, 5, 4], np.float32)  # edges: pixels 2..4 x 1..3
    assert map_box(box, FLIP_W10, (6, 10)).tolist() == [5, 1, 8, 4]
    assert map_box(box, scale2, (6, 8)).tolist() == [4, 2, 8, 6]  # clipped to the image
    crop = np.array([[1, 0, -6], [0, 1, 0], [0, 0, 1]], np.float32)
    assert map_box(box, crop, (6, 10)) is None  # left the image


def _row(ann_id, points, labels, box=None, text='', isthing=True, label=0):
    return dict(ann_id=ann_id, label=label, isthing=isthing,
                points=np.asarray(points, np.float32), point_labels=np.asarray(labels),
                box=None if box is None else np.asarray(box, np.float32), text=text)


def _image(matrix=None) -> dict:
    """A 10-wide packed image (masks in its frame): thing 7 (crowd), thing 9, thing 4 (cropped
    away), stuff label 3; ``matrix`` maps the original image (the stored rows) to it."""
    h, w = 6, 10
    masks = np.zeros((3, h, w), np.uint8)
    masks[0, 0:2, 0:2] = 1
    masks[1, 1:4, 6:9] = 1
    seg = np.full((h, w), 255, np.uint8)
    seg[5] = 3
    return dict(img=np.zeros((h, w, 3), np.uint8), img_shape=(h, w),
                gt_masks=BitmapMasks(masks, h, w), gt_instances_ids=np.array([7, 9, 4]),
                gt_ignore_flags=np.array([True, False, False]), gt_bboxes_labels=np.array([0, 1, 0]),
                gt_seg_map=seg, homography_matrix=matrix,
                stored_prompts=[_row(9, [[1, 2], [5, 5]], [1, 0], box=[1, 1, 4, 4], text='a box'),
                                _row(4, [[5, 5]], [1]),            # its mask is empty: dropped
                                _row(7, [[0, 0]], [1]),            # crowd: no target
                                _row(0, [[3, 5]], [1], isthing=False, label=3)])


def test_rows_match_targets_by_id_in_the_transformed_frame():
    t = LoadStoredPrompts(num_thing_classes=3, box_prob=1.0, text_prob=1.0, seed=0)
    p = t(_image(FLIP_W10))['prompts']  # the stored rows are in the un-flipped image
    rows = {int(g): i for i, g in enumerate(p.gt_ids)}
    assert set(rows) == {0, 2}  # thing 9 is target 0 (after the crowd row); stuff is 1 + 1
    thing, stuff = rows[0], rows[2]
    assert p.points[thing, :2].tolist() == [[8, 2], [4, 5]] and p.point_labels[thing, :2].tolist() == [1, 0]
    assert p.bboxes[thing].tolist() == [6, 1, 9, 4] and p.box_valid[thing]
    assert p.texts[thing] == 'a box'
    assert _image()['gt_masks'].masks[1][2, 8]  # the positive click lands on the object
    assert p.points[stuff, 0].tolist() == [6, 5]


def test_kinds_are_subsampled_and_points_leaving_the_image_become_padding():
    res = _image(np.array([[1, 0, -3], [0, 1, 0], [0, 0, 1]], np.float32))  # crop x >= 3
    res['stored_prompts'] = [_row(9, [[1, 2], [5, 2]], [1, 1], box=[1, 1, 8, 4], text='x')]
    p = LoadStoredPrompts(point_prob=1.0, box_prob=0.0, text_prob=0.0, seed=0)(res)['prompts']
    assert p.point_labels[0].tolist() == [-1, 1] and p.points[0, 1].tolist() == [2, 2]
    assert not p.box_valid[0] and p.texts == ['']
    # a row keeps at least one kind even when every probability is 0
    p = LoadStoredPrompts(point_prob=0.0, box_prob=0.0, text_prob=0.0, seed=0)(_image())['prompts']
    kinds = [(p.point_labels[i] >= 0).any().item() + p.box_valid[i].item() + bool(p.texts[i])
             for i in range(len(p))]
    assert kinds == [1] * len(p)


def test_clips_get_per_frame_prompts():
    frames = [_image(), _image()]
    frames[1]['stored_prompts'] = []
    clip = {k: [f[k] for f in frames] for k in frames[0]}
    prompts = LoadStoredPrompts(seed=0)(clip)['prompts']
    assert prompts[1] is None and sorted(prompts[0].gt_ids.tolist()) == [0]  # no stuff in clips


def test_bad_input_is_named():
    with pytest.raises(KeyError, match='no results\\["stored_prompts"\\]'):
        LoadStoredPrompts()(dict(img=np.zeros((2, 2, 3))))
    res = _image()
    del res['gt_instances_ids']
    with pytest.raises(KeyError, match='gt_instances_ids'):
        LoadStoredPrompts()(res)
    with pytest.raises(ValueError, match='box_prob must be in'):
        LoadStoredPrompts(box_prob=2)
    assert torch.is_tensor(LoadStoredPrompts(seed=0)(_image())['prompts'].points)
