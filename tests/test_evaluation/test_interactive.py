"""The RITM click protocol: hand-computed cases, edge cases and real masks from ../shared/data."""
import json

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import distance_transform_edt

from seg.evaluation.interactive import (
    Click,
    ClickSimulator,
    box_prompt_iou,
    compute_noc,
    interior_point,
    mask_iou,
    miou_at_clicks,
    run_click_session,
)
from seg.evaluation.panoptic_quality import read_panoptic_png
from seg.utils.masks import mask_to_box

from .toy_predictor import DiskPredictor


def _empty(shape):
    return np.zeros(shape, dtype=bool)


def _brute_force_interior_point(mask: np.ndarray):
    """Independent first click: scipy EDT with the image border as boundary, first maximum."""
    dist = distance_transform_edt(np.pad(mask.astype(bool), 1))[1:-1, 1:-1]
    ys, xs = np.nonzero(dist == dist.max())
    return int(ys[0]), int(xs[0])


def test_first_click_is_the_centre_of_a_full_image_object():
    sim = ClickSimulator(np.ones((5, 5), dtype=np.int64))
    assert sim.next_click(_empty((5, 5))) == Click(2, 2, True)


def test_image_border_counts_as_boundary():
    # Object = the left 4x4 block of a 4x8 image. Without the 1-px padding the left/top border
    # would not be boundary and the click would go to (0, 0); with it the four central pixels
    # are all at distance 2 and the first in row-major order is (1, 1).
    gt = np.zeros((4, 8), dtype=np.int64)
    gt[:, :4] = 1
    sim = ClickSimulator(gt)
    assert sim.next_click(_empty(gt.shape)) == Click(1, 1, True)
    # The clicked pixel is zeroed: the same prediction now gives the next maximum, (1, 2).
    assert sim.next_click(_empty(gt.shape)) == Click(1, 2, True)
    assert sim.clicks == [Click(1, 1, True), Click(1, 2, True)]


def test_tie_between_false_negative_and_false_positive_gives_a_negative_click():
    # GT = columns 0..2, prediction = columns 4..6 of a 3x7 image: both error regions are 3x3
    # blocks whose centres are at distance 2 -> tie -> negative click at the FP centre.
    gt = np.zeros((3, 7), dtype=np.int64)
    gt[:, :3] = 1
    pred = _empty(gt.shape)
    pred[:, 4:] = True
    assert ClickSimulator(gt).next_click(pred) == Click(1, 5, False)


def test_ignored_pixels_are_not_errors():
    # Same layout but column 4 is ignored: the FP region shrinks to 3x2 (max distance 1), so the
    # FN centre (distance 2) wins and the click is positive.
    gt = np.zeros((3, 7), dtype=np.int64)
    gt[:, :3] = 1
    gt[:, 4] = -1
    pred = _empty(gt.shape)
    pred[:, 4:] = True
    assert ClickSimulator(gt).next_click(pred) == Click(1, 1, True)


def test_perfect_prediction_gives_the_degenerate_negative_click_at_origin():
    gt = np.zeros((6, 6), dtype=np.int64)
    gt[2:4, 2:4] = 1
    assert ClickSimulator(gt).next_click(gt.astype(bool)) == Click(0, 0, False)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match='no object pixel'):
        ClickSimulator(np.zeros((3, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r'values must be 0 .*got \[2\]'):
        ClickSimulator(np.array([[1, 2]]))
    with pytest.raises(ValueError, match='shape'):
        ClickSimulator(np.ones((3, 3), dtype=np.int64)).next_click(_empty((3, 4)))


def test_mask_iou_ignores_void_pixels():
    gt = np.array([[1, 1, 0, -1]])
    pred = np.array([[1, 0, 1, 1]], dtype=bool)
    # valid pixels 0..2: intersection {0}, union {0, 1, 2}
    assert mask_iou(gt, pred) == pytest.approx(1 / 3)


def test_compute_noc_and_nof_hand_computed():
    ious = [[0.3, 0.85, 0.95], [0.8999999999, 0.8999, 0.8999], [0.2, 0.5, 0.81]]
    nocs, nofs = compute_noc(ious, np.array([0.5, 0.85, 0.9]), max_clicks=3)
    # Per-sample NoC: @0.5 -> 2, 1, 2; @0.85 -> 2, 1, 3; @0.9 -> 3, 1, 3. Like the reference, IoUs
    # are float32 and compared in float32: 0.8999999999 becomes float32(0.9) and reaches 0.9
    # (even though the thresholds here are float64), 0.8999 does not.
    assert nocs == pytest.approx([5 / 3, 2.0, 7 / 3])
    # NoF counts NoC == max_clicks, including sample 0 reaching 0.9 only at the last click.
    assert nofs == [0, 1, 2]


def test_miou_at_clicks_needs_full_sessions():
    ious = [[0.3, 0.85, 0.95], [0.9, 0.9, 0.9], [0.2, 0.5, 0.81]]
    np.testing.assert_allclose(miou_at_clicks(ious, 3), [1.4 / 3, 2.25 / 3, 2.66 / 3], rtol=1e-6)
    assert miou_at_clicks(ious, 3).dtype == np.float32
    with pytest.raises(ValueError, match='no early stop'):
        miou_at_clicks([[0.3, 0.9], [0.5]], 2)


def _disk_gt(shape=(21, 25), centre=(10, 12), radius=6):
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2).astype(np.int64)


def test_session_with_toy_predictor_and_early_stop():
    gt = _disk_gt()
    image = np.zeros(gt.shape + (3, ), dtype=np.uint8)
    predictor = DiskPredictor(radius=6)
    session = run_click_session(image, gt, predictor, max_clicks=20, target_iou=0.9)
    # The first click is the disk centre, the toy disk equals the GT: IoU 1 and stop.
    assert session.clicks == [Click(10, 12, True)]
    np.testing.assert_array_equal(session.ious, [1.0])
    assert session.ious.dtype == np.float32
    assert predictor.calls[0]['prev_logits'] is None


def test_full_session_runs_all_clicks_and_passes_previous_logits():
    gt = _disk_gt()
    image = np.zeros(gt.shape + (3, ), dtype=np.uint8)
    predictor = DiskPredictor(radius=4)
    session = run_click_session(image, gt, predictor, max_clicks=20)
    assert len(session.ious) == 20 and len(session.clicks) == 20
    for i in range(1, 20):
        assert len(predictor.calls[i]['clicks']) == i + 1
        assert predictor.calls[i]['prev_logits'] is not None
    # A radius-4 disk inside a radius-6 disk: IoU after one click is |d4| / |d6| exactly.
    assert session.ious[0] == pytest.approx(DiskPredictor(4)(np.zeros((21, 25, 3)), [Click(
        10, 12, True)], None).__gt__(0).sum() / gt.sum())
    assert session.ious[-1] >= session.ious[0]


def test_box_prompt_and_mask_to_box():
    gt = np.zeros((10, 12), dtype=np.int64)
    gt[2:6, 3:9] = 1
    box = mask_to_box(gt)
    assert box.tolist() == [3.0, 2.0, 9.0, 6.0]  # COCO convention: x2 = x1 + width
    image = np.zeros((10, 12, 3), dtype=np.uint8)
    assert box_prompt_iou(image, gt, DiskPredictor(), box) == 1.0
    disk = _disk_gt()
    iou = box_prompt_iou(np.zeros((21, 25, 3), np.uint8), disk, DiskPredictor(), mask_to_box(disk))
    assert iou == pytest.approx(disk.sum() / 13 ** 2)


def _check_session_invariants(gt: np.ndarray, session, predictor: DiskPredictor) -> None:
    """Each click fixes an error of the prediction it saw; IoUs match an independent count."""
    obj, valid = gt == 1, gt != -1
    pred = np.zeros(gt.shape, dtype=bool)
    logits = None  # the previous click's prediction, fed back from the second click on
    for k, click in enumerate(session.clicks):
        assert valid[click.y, click.x], 'a click landed on an ignored pixel'
        if click.is_positive:
            assert obj[click.y, click.x] and not pred[click.y, click.x]
        else:
            assert not obj[click.y, click.x] and pred[click.y, click.x]
        logits = predictor(np.zeros(gt.shape + (3, ), np.uint8), session.clicks[:k + 1],
                           logits)
        pred = logits > 0
        inter = np.sum(pred & obj & valid)
        union = np.sum((pred | obj) & valid)
        assert session.ious[k] == np.float32(inter / union)
    assert len(set(session.clicks)) == len(session.clicks)


def test_simulator_on_davis2016_mask(shared_data):
    mask = np.array(Image.open(shared_data / 'davis2016/Annotations/480p/dog/00000.png')) > 0
    gt = mask.astype(np.int64)
    image = np.zeros(gt.shape + (3, ), dtype=np.uint8)
    session = run_click_session(image, gt, DiskPredictor(radius=60), max_clicks=12)
    assert (session.clicks[0].y, session.clicks[0].x) == _brute_force_interior_point(mask)
    assert session.clicks[0].is_positive
    assert any(not c.is_positive for c in session.clicks)  # the big disks overshoot
    _check_session_invariants(gt, session, DiskPredictor(radius=60))
    again = run_click_session(image, gt, DiskPredictor(radius=60), max_clicks=12)
    assert again.clicks == session.clicks


def test_simulator_on_davis2017_mask_with_void(shared_data):
    ids = np.array(Image.open(shared_data / 'davis2017_sample/Annotations/480p/tennis/00000.png'))
    assert (ids == 255).any()
    gt = np.where(ids == 255, -1, ids == 1).astype(np.int64)
    session = run_click_session(np.zeros(gt.shape + (3, ), np.uint8), gt, DiskPredictor(radius=15),
                                max_clicks=8)
    _check_session_invariants(gt, session, DiskPredictor(radius=15))


def test_coco_sam_single_click_on_panoptic_segments(shared_data):
    root = shared_data / 'coco_panoptic_sample'
    anns = json.loads((root / 'panoptic_examples.json').read_text())['annotations']
    ious = []
    for ann in anns:
        seg_ids = read_panoptic_png(root / 'panoptic_examples' / ann['file_name'])
        image = np.zeros(seg_ids.shape + (3, ), dtype=np.uint8)
        for seg in ann['segments_info']:
            mask = seg_ids == seg['id']
            point = interior_point(mask)
            assert mask[point] and point == _brute_force_interior_point(mask)
            session = run_click_session(image, mask.astype(np.int64), DiskPredictor(radius=10),
                                        max_clicks=1)
            disk = np.zeros_like(mask)
            yy, xx = np.ogrid[:mask.shape[0], :mask.shape[1]]
            disk[(yy - point[0]) ** 2 + (xx - point[1]) ** 2 <= 100] = True
            assert session.ious[0] == np.float32((disk & mask).sum() / (disk | mask).sum())
            ious.append(session.ious)
    assert len(ious) == sum(len(a['segments_info']) for a in anns) == 50
    assert 0 < miou_at_clicks(ious, 1)[0] < 1
