import pytest
import torch

from seg.models.utils.corrective_clicks import CorrectiveClicks


def _cell(points: torch.Tensor, input_hw, grid_hw) -> list:
    """Input-pixel clicks -> (row, col) of their grid cell."""
    sy, sx = input_hw[0] / grid_hw[0], input_hw[1] / grid_hw[1]
    return [(int(y // sy), int(x // sx)) for x, y in points.tolist()]


def test_positive_click_inside_false_negative_negative_inside_false_positive():
    gt = torch.zeros(2, 16, 20, dtype=torch.bool)
    gt[0, 2:12, 2:12] = True  # object 0: predicted empty -> a false negative
    gt[1, 2:6, 2:6] = True    # object 1: predicted with a large spurious blob -> a false positive
    pred = torch.zeros_like(gt)
    pred[1, 2:6, 2:6] = True
    pred[1, 8:16, 10:20] = True
    valid = torch.ones_like(gt)
    clicks = CorrectiveClicks(gt, valid, input_hw=(64, 80))
    points, labels = clicks.next_clicks(pred)
    assert labels.tolist() == [1, 0]
    (y0, x0), (y1, x1) = _cell(points, (64, 80), (16, 20))
    assert gt[0, y0, x0] and not pred[0, y0, x0]        # inside the false negative
    assert pred[1, y1, x1] and not gt[1, y1, x1]        # inside the false positive
    # deepest point of the 10x10 error square: its centre (row-major first maximum)
    assert (y0, x0) in {(6, 6), (6, 7), (7, 6), (7, 7)}
    # pixel coordinates are the centre of the grid cell
    assert points[0].tolist() == [(x0 + 0.5) * 4, (y0 + 0.5) * 4]


def test_never_on_padding_and_no_click_without_error():
    gt = torch.zeros(2, 8, 8, dtype=torch.bool)
    gt[:, 1:4, 1:4] = True
    pred = gt.clone()
    pred[0, :, 5:] = True  # a false positive, but only over the padding (columns >= 5)
    valid = torch.ones_like(gt)
    valid[:, :, 5:] = False
    clicks = CorrectiveClicks(gt, valid, input_hw=(32, 32))
    points, labels = clicks.next_clicks(pred)
    assert labels.tolist() == [-1, -1]  # nothing wrong inside the image
    pred[0, 6, 0:5] = True  # now a false positive inside the image too, next to the padding
    points, labels = clicks.next_clicks(pred)
    assert labels.tolist() == [0, -1]
    (y, x), = _cell(points[:1], (32, 32), (8, 8))
    assert valid[0, y, x] and pred[0, y, x] and not gt[0, y, x]


def test_the_same_pixel_is_not_clicked_twice_and_objects_without_pixels_have_no_session():
    gt = torch.zeros(2, 8, 8, dtype=torch.bool)
    gt[0, 3:5, 3:5] = True  # object 1 is empty on this grid (smaller than a cell)
    clicks = CorrectiveClicks(gt, torch.ones_like(gt), input_hw=(8, 8))
    pred = torch.zeros_like(gt)
    first, labels = clicks.next_clicks(pred)
    assert labels.tolist() == [1, -1]
    second, labels = clicks.next_clicks(pred)
    assert labels[0] == 1 and first[0].tolist() != second[0].tolist()
    with pytest.raises(ValueError, match=r'pred must be \(2, 8, 8\)'):
        clicks.next_clicks(pred[:1])
    with pytest.raises(ValueError, match=r'\[N, h, w\]'):
        CorrectiveClicks(gt[0], torch.ones_like(gt), input_hw=(8, 8))
