"""COCO panoptic PQ: a hand-computed image with void, crowd and a category without predictions,
the strict IoU threshold, file-level pq_compute and the shared COCO sample."""
import json
import shutil

import numpy as np
import pytest

from seg.evaluation.panoptic_quality import PQStat, pq_compute, read_panoptic_png, write_panoptic_png

CATEGORIES = {
    1: {'id': 1, 'name': 'a', 'isthing': 1},
    2: {'id': 2, 'name': 'b', 'isthing': 0},
    3: {'id': 3, 'name': 'c', 'isthing': 1},  # has GT but no prediction
    9: {'id': 9, 'name': 'z', 'isthing': 0},  # absent everywhere: not counted in n
}
GT_IDS = np.array([[1, 1, 1, 2, 2, 2],
                   [1, 1, 1, 2, 2, 2],
                   [3, 3, 0, 2, 2, 2],
                   [3, 3, 0, 4, 4, 4]])
GT_SEGMENTS = [
    {'id': 1, 'category_id': 1, 'iscrowd': 0, 'area': 6},
    {'id': 2, 'category_id': 2, 'iscrowd': 0, 'area': 9},
    {'id': 3, 'category_id': 3, 'iscrowd': 0, 'area': 4},
    {'id': 4, 'category_id': 1, 'iscrowd': 1, 'area': 3},  # crowd region of category 1
]
PRED_IDS = np.array([[5, 5, 5, 6, 6, 6],
                     [5, 5, 0, 6, 6, 6],
                     [7, 7, 7, 6, 6, 6],
                     [7, 7, 7, 8, 8, 8]])
PRED_SEGMENTS = [{'id': 5, 'category_id': 1}, {'id': 6, 'category_id': 2},
                 {'id': 7, 'category_id': 1}, {'id': 8, 'category_id': 1}]
# By hand:
# - pred 5 vs GT 1 (cat 1): intersection 5, union 5 + 6 - 5 = 6 -> IoU 5/6 > 0.5: TP.
# - pred 6 vs GT 2 (cat 2): IoU 9/9: TP.
# - GT 3 (cat 3) matches nothing: FN. GT 4 is crowd: neither matched nor FN.
# - pred 7 (cat 1): 2 of its 6 px on VOID, none on the cat-1 crowd -> 1/3 <= 0.5: FP.
# - pred 8 (cat 1): all 3 px on the cat-1 crowd -> ignored.
# cat 1: PQ = (5/6) / 1.5, SQ = 5/6, RQ = 1 / 1.5; cat 2: 1, 1, 1; cat 3: 0, 0, 0.
CAT1 = {'pq': (5 / 6) / 1.5, 'sq': 5 / 6, 'rq': 1 / 1.5}
EXPECTED = {
    'All': {'pq': (CAT1['pq'] + 1) / 3, 'sq': (CAT1['sq'] + 1) / 3, 'rq': (CAT1['rq'] + 1) / 3,
            'n': 3},
    'Things': {'pq': CAT1['pq'] / 2, 'sq': CAT1['sq'] / 2, 'rq': CAT1['rq'] / 2, 'n': 2},
    'Stuff': {'pq': 1.0, 'sq': 1.0, 'rq': 1.0, 'n': 1},
}


def _assert_summary(summary):
    for name, expected in EXPECTED.items():
        assert summary[name] == pytest.approx(expected, abs=1e-12), name


def test_hand_computed_image():
    stat = PQStat()
    stat.add_image(GT_SEGMENTS, PRED_SEGMENTS, GT_IDS, PRED_IDS, CATEGORIES, image_id=1)
    assert (stat.per_category[1].tp, stat.per_category[1].fp, stat.per_category[1].fn) == (1, 1, 0)
    assert (stat.per_category[3].tp, stat.per_category[3].fp, stat.per_category[3].fn) == (0, 0, 1)
    summary = stat.summary(CATEGORIES)
    _assert_summary(summary)
    assert summary['per_category']['3']['pq'] == 0.0 and summary['per_category']['9']['tp'] == 0


def test_void_leaves_the_union_and_iou_must_exceed_half():
    cats = {1: {'id': 1, 'isthing': 1}}
    gt = np.array([[1, 1, 0, 0]])
    gt_segs = [{'id': 1, 'category_id': 1, 'iscrowd': 0, 'area': 2}]
    # Prediction = the object plus both VOID pixels: the VOID part leaves the union -> IoU 1.
    stat = PQStat()
    stat.add_image(gt_segs, [{'id': 7, 'category_id': 1}], gt, np.array([[7, 7, 7, 7]]), cats)
    assert stat.average(cats)[0] == {'pq': 1.0, 'sq': 1.0, 'rq': 1.0, 'n': 1}
    # IoU exactly 0.5 is not a match: one FN and one FP.
    stat = PQStat()
    stat.add_image(gt_segs, [{'id': 7, 'category_id': 1}], gt, np.array([[7, 0, 0, 0]]), cats)
    s = stat.per_category[1]
    assert (s.tp, s.fp, s.fn, s.iou) == (0, 1, 1, 0.0)


def test_crowd_only_ignores_predictions_of_its_own_category():
    cats = {1: {'id': 1, 'isthing': 1}, 2: {'id': 2, 'isthing': 1}}
    gt = np.array([[4, 4, 4, 4]])
    gt_segs = [{'id': 4, 'category_id': 1, 'iscrowd': 1, 'area': 4}]
    for pred_cat, expected_fp in ((1, 0), (2, 1)):
        stat = PQStat()
        stat.add_image(gt_segs, [{'id': 7, 'category_id': pred_cat}], gt, np.array([[7, 7, 7, 0]]),
                       cats)
        assert stat.per_category[pred_cat].fp == expected_fp
        assert stat.per_category[1].fn == 0  # crowd GT is never a false negative


def test_inconsistent_inputs_raise():
    with pytest.raises(KeyError, match='segment id 8 is in the prediction PNG'):
        PQStat().add_image(GT_SEGMENTS, PRED_SEGMENTS[:3], GT_IDS, PRED_IDS, CATEGORIES, 1)
    with pytest.raises(KeyError, match=r'\[9\] are in segments_info but not in'):
        PQStat().add_image(GT_SEGMENTS, PRED_SEGMENTS + [{'id': 9, 'category_id': 1}], GT_IDS,
                           PRED_IDS, CATEGORIES, 1)
    with pytest.raises(KeyError, match='unknown category_id 5'):
        PQStat().add_image(GT_SEGMENTS, PRED_SEGMENTS[:3] + [{'id': 8, 'category_id': 5}], GT_IDS,
                           PRED_IDS, CATEGORIES, 1)
    with pytest.raises(KeyError, match=r'GT PNG has segment ids \[4\]'):
        PQStat().add_image(GT_SEGMENTS[:3], PRED_SEGMENTS, GT_IDS, PRED_IDS, CATEGORIES, 1)
    with pytest.raises(ValueError, match='shape'):
        PQStat().add_image(GT_SEGMENTS, PRED_SEGMENTS, GT_IDS, PRED_IDS[:, :5], CATEGORIES, 1)


def _write_case(tmp_path):
    for name, ids, segs in (('gt', GT_IDS, GT_SEGMENTS), ('pred', PRED_IDS, PRED_SEGMENTS)):
        write_panoptic_png(ids, tmp_path / name / 'img.png')
        data = {'annotations': [{'image_id': 1, 'file_name': 'img.png', 'segments_info': segs}]}
        if name == 'gt':
            data['categories'] = list(CATEGORIES.values())
        (tmp_path / f'{name}.json').write_text(json.dumps(data))


def test_pq_compute_from_files(tmp_path):
    _write_case(tmp_path)
    result = pq_compute(tmp_path / 'gt.json', tmp_path / 'gt', tmp_path / 'pred.json',
                        tmp_path / 'pred', progress=False)
    _assert_summary(result)
    (tmp_path / 'pred.json').write_text(json.dumps({'annotations': []}))
    with pytest.raises(KeyError, match='no prediction for image 1'):
        pq_compute(tmp_path / 'gt.json', tmp_path / 'gt', tmp_path / 'pred.json',
                   tmp_path / 'pred', progress=False)


def _coco_sample(shared_data):
    root = shared_data / 'coco_panoptic_sample'
    return root, json.loads((root / 'panoptic_examples.json').read_text())


def test_shared_coco_sample_against_itself_and_with_a_dropped_segment(shared_data, tmp_path):
    root, gt = _coco_sample(shared_data)
    gt_png = root / 'panoptic_examples'
    result = pq_compute(root / 'panoptic_examples.json', gt_png, root / 'panoptic_examples.json',
                        gt_png, categories=root / 'panoptic_coco_categories.json', progress=False)
    present = {s['category_id'] for a in gt['annotations'] for s in a['segments_info']
               if not s['iscrowd']}
    assert result['All'] == {'pq': 1.0, 'sq': 1.0, 'rq': 1.0, 'n': len(present)}

    # Drop the person segments of the first image from the prediction (pixels -> VOID).
    pred = json.loads(json.dumps(gt))
    ann = pred['annotations'][0]
    dropped = [s for s in ann['segments_info'] if s['category_id'] == 1 and not s['iscrowd']]
    assert dropped
    ann['segments_info'] = [s for s in ann['segments_info'] if s not in dropped]
    ids = read_panoptic_png(gt_png / ann['file_name'])
    ids[np.isin(ids, [s['id'] for s in dropped])] = 0
    shutil.copytree(gt_png, tmp_path / 'pred')
    write_panoptic_png(ids, tmp_path / 'pred' / ann['file_name'])
    (tmp_path / 'pred.json').write_text(json.dumps(pred))
    result = pq_compute(root / 'panoptic_examples.json', gt_png, tmp_path / 'pred.json',
                        tmp_path / 'pred', progress=False)
    person_total = sum(1 for a in gt['annotations'] for s in a['segments_info']
                       if s['category_id'] == 1 and not s['iscrowd'])
    tp = person_total - len(dropped)
    person_pq = tp / (tp + 0.5 * len(dropped))
    assert result['per_category']['1']['pq'] == pytest.approx(person_pq)
    assert result['All']['pq'] == pytest.approx((len(present) - 1 + person_pq) / len(present))
    assert result['Stuff']['pq'] == 1.0
