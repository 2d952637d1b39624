"""DAVIS J&F: hand-computed cases, official edge cases, a brute-force check on real DAVIS-2016
frames and the whole-root evaluation on a tiny synthetic DAVIS-2017 root."""
import numpy as np
import pytest
from PIL import Image
from scipy.spatial import cKDTree

from seg.evaluation.davis import (
    boundary_map,
    boundary_radius,
    contour_accuracy,
    davis_palette,
    decay_bins,
    evaluate_davis,
    masks_to_id_map,
    read_davis_png,
    region_similarity,
    sequence_statistics,
    write_davis_png,
)


def test_boundary_map_hand_computed():
    square = np.zeros((4, 4), dtype=bool)
    square[1:3, 1:3] = True
    np.testing.assert_array_equal(boundary_map(square).astype(int),
                                  [[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]])
    # Object in the last row: the last row compares only with its right neighbour.
    last_row = np.zeros((3, 3), dtype=bool)
    last_row[2, 1] = True
    np.testing.assert_array_equal(boundary_map(last_row).astype(int),
                                  [[0, 0, 0], [1, 1, 0], [1, 1, 0]])
    # A mask filling the image has no boundary at all (the corner is never boundary).
    assert not boundary_map(np.ones((3, 5), dtype=bool)).any()


def test_j_and_f_edge_cases_follow_the_official_code():
    empty, full = np.zeros((6, 8), bool), np.ones((6, 8), bool)
    some = np.zeros((6, 8), bool)
    some[2:4, 2:5] = True
    assert region_similarity(empty, empty) == 1.0 and contour_accuracy(empty, empty) == 1.0
    assert region_similarity(some, empty) == 0.0 and contour_accuracy(some, empty) == 0.0
    assert contour_accuracy(empty, some) == 0.0
    # Both boundaries are empty for a full vs an empty mask, so F is 1 while J is 0.
    assert region_similarity(full, empty) == 0.0 and contour_accuracy(full, empty) == 1.0


def test_boundary_radius_and_tolerance():
    assert boundary_radius((480, 854)) == 8
    assert boundary_radius((10, 10)) == 1
    gt = np.zeros((10, 10), bool)
    gt[:, :5] = True  # boundary = column 4
    one_off, two_off = np.zeros_like(gt), np.zeros_like(gt)
    one_off[:, :6] = True  # boundary 1 px away: inside the radius-1 disk
    two_off[:, :7] = True  # 2 px away: nothing matches
    assert contour_accuracy(gt, one_off) == 1.0
    assert contour_accuracy(gt, two_off) == 0.0


def test_decay_bins_and_statistics_hand_computed():
    # linspace(1, 8, 5) = 1, 2.75, 4.5, 6.25, 8 -> rounded (halves up) 1, 3, 5, 6, 8 -> minus 1.
    assert decay_bins(8) == [(0, 3), (2, 5), (4, 6), (5, 8)]
    # n = 3: 1.5 and 2.5 both round up (numpy alone would round 2.5 to 2).
    assert decay_bins(3) == [(0, 2), (1, 2), (1, 3), (2, 3)]
    mean, recall, decay = sequence_statistics([1, 1, 1, 0.5, 0.5, 0, 0, 0.2])
    assert mean == pytest.approx(4.2 / 8)
    assert recall == pytest.approx(3 / 8)  # 0.5 is not > 0.5
    assert decay == pytest.approx(1 - 0.2 / 3)
    with pytest.raises(ValueError, match='NaN'):
        sequence_statistics([0.5, np.nan])


def _brute_force_boundary(mask: np.ndarray) -> np.ndarray:
    """Pixel-by-pixel loop over the object's bounding box grown by one pixel."""
    h, w = mask.shape
    out = np.zeros((h, w), dtype=bool)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return out
    for i in range(max(ys.min() - 1, 0), ys.max() + 1):
        for j in range(max(xs.min() - 1, 0), xs.max() + 1):
            v = mask[i, j]
            if i == h - 1 and j == w - 1:
                continue
            if i == h - 1:
                out[i, j] = v != mask[i, j + 1]
            elif j == w - 1:
                out[i, j] = v != mask[i + 1, j]
            else:
                out[i, j] = v != mask[i, j + 1] or v != mask[i + 1, j] or v != mask[i + 1, j + 1]
    return out


def _brute_force_f(gt: np.ndarray, pred: np.ndarray) -> float:
    radius = np.ceil(0.008 * np.sqrt(gt.shape[0] ** 2 + gt.shape[1] ** 2))
    gt_pts = np.argwhere(_brute_force_boundary(gt))
    pred_pts = np.argwhere(_brute_force_boundary(pred))
    if len(gt_pts) == 0 or len(pred_pts) == 0:
        return float(len(gt_pts) == len(pred_pts))

    def matched(a, b):  # points of a with a point of b at Euclidean distance <= radius
        dist, _ = cKDTree(b).query(a, distance_upper_bound=radius + 1e-9)
        return np.isfinite(dist).sum()

    precision = matched(pred_pts, gt_pts) / len(pred_pts)
    recall = matched(gt_pts, pred_pts) / len(gt_pts)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize('seq, frame', [('dog', 30), ('bmx-trees', 40), ('dance-twirl', 40)])
def test_j_and_f_match_brute_force_on_davis2016(shared_data, seq, frame):
    ann = shared_data / 'davis2016' / 'Annotations' / '480p' / seq
    first = np.array(Image.open(ann / '00000.png')) > 0
    gt = np.array(Image.open(ann / f'{frame:05d}.png')) > 0
    cases = [(gt, first)]
    if seq == 'dance-twirl':  # touches the last row; rotated, it touches the last column
        assert gt[-1].any()
        cases.append((np.rot90(gt), np.rot90(first)))
    for g, p in cases:
        np.testing.assert_array_equal(boundary_map(g), _brute_force_boundary(g))
        assert region_similarity(g, p) == np.logical_and(g, p).sum() / np.logical_or(g, p).sum()
        assert contour_accuracy(g, p) == pytest.approx(_brute_force_f(g, p), abs=1e-12)
        assert contour_accuracy(g, g) == 1.0


def test_palette_matches_the_davis_files(shared_data):
    with Image.open(shared_data / 'davis2017_sample/Annotations/480p/tennis/00000.png') as im:
        reference = im.getpalette()
    assert davis_palette()[:len(reference)] == reference


def test_write_davis_png_and_id_map(tmp_path):
    masks = np.zeros((3, 4, 5), bool)
    masks[0, :2, :2] = True  # id 3
    masks[1, 1:3, 1:3] = True  # id 1: wins the overlap at (1, 1)
    masks[2, 3, 4] = True  # id 2
    ids = masks_to_id_map(masks, [3, 1, 2])
    np.testing.assert_array_equal(ids, [[3, 3, 0, 0, 0], [3, 1, 1, 0, 0], [0, 1, 1, 0, 0],
                                        [0, 0, 0, 0, 2]])
    write_davis_png(ids, tmp_path / 'seq' / '00001.png')
    with Image.open(tmp_path / 'seq' / '00001.png') as im:
        assert im.mode == 'P' and im.getpalette()[3:6] == [128, 0, 0]
    np.testing.assert_array_equal(read_davis_png(tmp_path / 'seq' / '00001.png'), ids)
    assert [p.name for p in (tmp_path / 'seq').iterdir()] == ['00001.png']  # no temp file left
    with pytest.raises(ValueError, match='1..254'):
        masks_to_id_map(masks, [0, 1, 2])


H, W = 6, 8


def _save(ids: np.ndarray, path, mode='P'):
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(ids.astype(np.uint8))
    if mode == 'P':
        im.putpalette(davis_palette())
    im.save(path)


def _tiny_root(tmp_path, gt_frames, sequence='a'):
    root = tmp_path / 'davis'
    for t, ids in enumerate(gt_frames):
        _save(ids, root / 'Annotations' / '480p' / sequence / f'{t:05d}.png')
    (root / 'ImageSets' / '2017').mkdir(parents=True)
    (root / 'ImageSets' / '2017' / 'val.txt').write_text(f'{sequence}\n')
    return root


def _two_objects(void=False):
    ids = np.zeros((H, W), np.uint8)
    ids[0:2, 0:2] = 1  # object 1: 4 px
    ids[3:5, 4:7] = 2  # object 2: 6 px
    if void:
        ids[3:5, 7] = 255
    return ids


def test_evaluate_davis_hand_computed(tmp_path):
    gt_frames = [_two_objects(), _two_objects(), _two_objects(void=True), _two_objects(),
                 _two_objects()]
    root = _tiny_root(tmp_path, gt_frames)
    res = tmp_path / 'res' / 'a'
    _save(_two_objects(), res / '00001.png')  # perfect
    covers_void = _two_objects()
    covers_void[3:5, 7] = 2  # object 2 also on the void pixels: J = 6 / 8, F = 1 (see below)
    _save(covers_void, res / '00002.png')
    only_one = _two_objects()
    only_one[only_one == 2] = 0  # id 2 missing -> empty mask: J = F = 0
    _save(only_one, res / '00003.png', mode='L')
    # Frames 0 and 4 have no result file: the first and last frames are never read.
    out = evaluate_davis(root, tmp_path / 'res', progress=False)
    # Object 1: J = F = [1, 1, 1]. Object 2: J = [1, 0.75, 0], F = [1, 1, 0]; the void pixels
    # are background, and its boundary shift stays within the 1-px tolerance of a 6x8 image.
    assert out['per_object'] == {'a_1': {'J-Mean': 1.0, 'F-Mean': 1.0},
                                 'a_2': {'J-Mean': pytest.approx(1.75 / 3),
                                         'F-Mean': pytest.approx(2 / 3)}}
    assert out['J-Mean'] == pytest.approx((1 + 1.75 / 3) / 2)
    assert out['J-Recall'] == pytest.approx((1 + 2 / 3) / 2)
    assert out['J-Decay'] == pytest.approx((0 + 0.875) / 2)  # bins of 3 frames: [0:2] vs [2:3]
    assert out['F-Mean'] == pytest.approx((1 + 2 / 3) / 2)
    assert out['F-Decay'] == pytest.approx(0.5)
    assert out['J&F-Mean'] == pytest.approx((out['J-Mean'] + out['F-Mean']) / 2)
    assert set(out['seconds_per_sequence']) == {'a'}


def test_evaluate_davis_errors(tmp_path):
    root = _tiny_root(tmp_path, [_two_objects()] * 3)
    res = tmp_path / 'res' / 'a'
    with pytest.raises(FileNotFoundError, match='results folder not found: .*res'):
        evaluate_davis(root, tmp_path / 'res', progress=False)
    res.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match='00001.png'):
        evaluate_davis(root, tmp_path / 'res', progress=False)
    bad = _two_objects()
    bad[5, 0] = 3
    _save(bad, res / '00001.png')
    with pytest.raises(ValueError, match='object id 3 but the GT of a has 2'):
        evaluate_davis(root, tmp_path / 'res', progress=False)
    _save(np.zeros((H + 1, W), np.uint8), res / '00001.png')
    with pytest.raises(ValueError, match='shape'):
        evaluate_davis(root, tmp_path / 'res', progress=False)
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(res / '00001.png')
    with pytest.raises(ValueError, match='single-channel'):
        evaluate_davis(root, tmp_path / 'res', progress=False)


def test_binary_davis2016_masks_need_the_flag(tmp_path):
    obj = np.zeros((H, W), np.uint8)
    obj[1:4, 2:6] = 255
    root = _tiny_root(tmp_path, [obj] * 3)
    _save(obj, tmp_path / 'res' / 'a' / '00001.png', mode='L')
    # Read as DAVIS-2017, 255 is void and the sequence has no object: a clear error, not NaN.
    with pytest.raises(ValueError, match='davis2016'):
        evaluate_davis(root, tmp_path / 'res', progress=False)
    out = evaluate_davis(root, tmp_path / 'res', binary_masks=True, progress=False)
    assert out['J&F-Mean'] == 1.0 and list(out['per_object']) == ['a_1']
    two = obj.copy()
    two[0, 0] = 1
    _save(two, tmp_path / 'res' / 'a' / '00001.png', mode='L')
    with pytest.raises(ValueError, match='one non-zero value'):
        evaluate_davis(root, tmp_path / 'res', binary_masks=True, progress=False)
