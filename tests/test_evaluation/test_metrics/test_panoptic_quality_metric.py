"""PanopticQualityMetric on mmdet-style predictions built from the shared COCO panoptic sample."""
import json

import numpy as np
import pytest
import torch
from mmdet.evaluation import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import PixelData

from seg.evaluation.panoptic_quality import pq_compute, read_panoptic_png
from seg.registry import METRICS


def _meta(root):
    cats = json.loads((root / 'panoptic_coco_categories.json').read_text())
    classes = [c['name'] for c in cats]
    return cats, {'classes': classes, 'thing_classes': [c['name'] for c in cats if c['isthing']]}


def _samples(root, drop_person=False):
    """Data samples whose prediction reproduces the GT (crowd -> void), mmdet's encoding."""
    cats, meta = _meta(root)
    label_of = {c['id']: i for i, c in enumerate(cats)}
    void = len(cats)
    samples = []
    for ann in json.loads((root / 'panoptic_examples.json').read_text())['annotations']:
        gt = read_panoptic_png(root / 'panoptic_examples' / ann['file_name'])
        pan = np.full(gt.shape, void, dtype=np.int64)
        segments_info = []
        for inst, seg in enumerate(ann['segments_info'], start=1):
            label = label_of[seg['category_id']]
            is_thing = cats[label]['isthing'] == 1
            segments_info.append({'id': seg['id'], 'category': label,
                                  'is_thing': is_thing and not seg['iscrowd']})
            if seg['iscrowd'] or (drop_person and seg['category_id'] == 1):
                continue
            pan[gt == seg['id']] = label + inst * INSTANCE_OFFSET if is_thing else label
        sample = DetDataSample(metainfo={
            'img_id': ann['image_id'], 'img_path': f'/imgs/{ann["file_name"][:-4]}.jpg',
            'seg_map_path': str(root / 'panoptic_examples' / ann['file_name']),
            'segments_info': segments_info, 'ori_shape': gt.shape})
        sample.pred_panoptic_seg = PixelData(sem_seg=torch.from_numpy(pan[None]))
        samples.append(sample)
    return meta, samples


def _run(cfg, meta, samples):
    metric = METRICS.build(cfg)
    metric.dataset_meta = meta
    evaluator = Evaluator([metric])
    evaluator.process(samples)
    return evaluator.evaluate(len(samples))


def test_perfect_prediction_with_and_without_the_gt_json(shared_data):
    root = shared_data / 'coco_panoptic_sample'
    meta, samples = _samples(root)
    for cfg in (dict(type='PanopticQualityMetric', ann_file=str(root / 'panoptic_examples.json')),
                dict(type='PanopticQualityMetric')):
        out = _run(cfg, meta, samples)
        assert out['coco_panoptic/PQ'] == 1.0 and out['coco_panoptic/SQ_th'] == 1.0
        assert out['coco_panoptic/RQ_st'] == 1.0


def test_written_prediction_scores_the_same_with_the_cli_protocol(shared_data, tmp_path):
    root = shared_data / 'coco_panoptic_sample'
    meta, samples = _samples(root, drop_person=True)
    prefix = tmp_path / 'pred'
    out = _run(dict(type='PanopticQualityMetric', ann_file=str(root / 'panoptic_examples.json'),
                    outfile_prefix=str(prefix)), meta, samples)
    assert out['coco_panoptic/PQ'] < 1.0 and out['coco_panoptic/PQ_st'] == 1.0
    pred = json.loads((tmp_path / 'pred.panoptic.json').read_text())
    assert sorted(a['file_name'] for a in pred['annotations']) == [
        '000000142238.png', '000000439180.png']
    # Segment ids are renumbered 1..K (0 stays VOID) and categories are COCO ids.
    first = pred['annotations'][0]['segments_info']
    assert [s['id'] for s in first] == list(range(1, len(first) + 1))
    result = pq_compute(root / 'panoptic_examples.json', root / 'panoptic_examples',
                        tmp_path / 'pred.panoptic.json', tmp_path / 'pred.panoptic',
                        progress=False)
    assert result['All']['pq'] == pytest.approx(out['coco_panoptic/PQ'], abs=1e-12)
    assert result['Things']['rq'] == pytest.approx(out['coco_panoptic/RQ_th'], abs=1e-12)


def test_format_only_writes_without_gt_and_bad_labels_fail(shared_data, tmp_path):
    root = shared_data / 'coco_panoptic_sample'
    meta, samples = _samples(root)
    for sample in samples:
        del sample.seg_map_path
    out = _run(dict(type='PanopticQualityMetric', ann_file=str(root / 'panoptic_examples.json'),
                    outfile_prefix=str(tmp_path / 'test'), format_only=True), meta, samples)
    assert out == {} and len(list((tmp_path / 'test.panoptic').iterdir())) == 2
    with pytest.raises(ValueError, match='format_only needs outfile_prefix'):
        METRICS.build(dict(type='PanopticQualityMetric', format_only=True))
    samples[0].pred_panoptic_seg = PixelData(sem_seg=torch.full((1, 4, 4), 200))
    with pytest.raises(ValueError, match=r'labels \[200\] exceed the 133 classes'):
        _run(dict(type='PanopticQualityMetric'), meta, samples[:1])


def test_a_larger_vocabulary_scores_its_extra_classes_as_void(shared_data):
    """A model trained on a vocabulary with classes the GT json lacks (FastSAM2's staged models):
    labels follow that vocabulary; segments of the extra classes are void with
    ``void_unknown_classes``, and an error without it."""
    root = shared_data / 'coco_panoptic_sample'
    meta, samples = _samples(root)
    things = meta['thing_classes']
    extra = ['giant_panda', 'object']
    vocab = things + extra + meta['classes'][len(things):]
    old_void, new_void = len(meta['classes']), len(vocab)
    for sample in samples:
        pan = sample.pred_panoptic_seg.sem_seg.clone()
        label, inst = pan % INSTANCE_OFFSET, pan // INSTANCE_OFFSET
        label = torch.where(label >= len(things), label + len(extra), label)
        label[label == old_void + len(extra)] = new_void
        # an 'object' segment over a void part of the image: not a GT category, must not count
        void = label == new_void
        label[void & (torch.rand(void.shape) < 0.5)] = len(things) + 1
        sample.pred_panoptic_seg = PixelData(sem_seg=label + inst * INSTANCE_OFFSET)
    vocab_meta = dict(meta, classes=vocab)
    cfg = dict(type='PanopticQualityMetric', ann_file=str(root / 'panoptic_examples.json'))
    with pytest.raises(KeyError, match=r"classes \['giant_panda', 'object'\] are not category"):
        _run(cfg, vocab_meta, samples)
    out = _run(dict(cfg, void_unknown_classes=True), vocab_meta, samples)
    assert out['coco_panoptic/PQ'] == 1.0
