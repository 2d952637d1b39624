import pytest
import torch

from seg.structures import PADDING, build_prompts, scale_prompts


def test_ragged_points_are_padded_with_label_minus_one():
    p = build_prompts(points=[[[1, 2], [3, 4]], [[5, 6]]], point_labels=[[1, 0], [1]])
    assert p.points.shape == (2, 2, 2)
    assert p.point_labels.tolist() == [[1, 0], [1, PADDING]]
    assert not p.box_valid.any() and p.gt_ids.tolist() == [-1, -1]


def test_box_valid_zeroes_missing_boxes():
    p = build_prompts(bboxes=[[1, 2, 3, 4], [9, 9, 1, 1]], box_valid=[True, False])
    assert p.box_valid.tolist() == [True, False]
    assert p.bboxes[1].abs().sum() == 0  # an invalid row is not checked and carries no numbers


@pytest.mark.parametrize('kwargs, match', [
    (dict(), 'at least one'),
    (dict(points=[[[1, 2]]]), 'without point_labels'),
    (dict(points=[[[1, 2]]], point_labels=[[2]]), 'must be 1'),
    (dict(points=[[[1, 2]]], point_labels=[[1]], texts=['a', 'b']), 'disagree'),
    (dict(bboxes=[[5, 5, 1, 1]]), 'xyxy'),
    (dict(texts=['a'], box_valid=[True]), 'without bboxes'),
    (dict(masks=torch.zeros(2, 3)), r'\[N, H, W\]'),
])
def test_bad_prompts_name_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_prompts(**kwargs)


def test_scale_prompts_scales_points_and_boxes_only():
    p = build_prompts(points=[[[10, 20]]], point_labels=[[1]], bboxes=[[2, 4, 6, 8]], texts=['x'])
    q = scale_prompts(p, 0.5, 2.0)
    assert q.points[0, 0].tolist() == [5, 40] and q.bboxes[0].tolist() == [1, 8, 3, 16]
    assert p.points[0, 0].tolist() == [10, 20]  # the input is not modified
    assert q.texts == ['x'] and q.point_labels.equal(p.point_labels)
