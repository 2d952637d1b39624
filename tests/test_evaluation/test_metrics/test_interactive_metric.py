"""InteractiveSegMetric drives a predictor through mmengine's Evaluator like tools/test.py does."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData, PixelData

from seg.evaluation.interactive import compute_noc, evaluate_object, miou_at_clicks
from seg.registry import METRICS

from ..toy_predictor import DiskPredictor

H, W = 24, 30


def _objects():
    rect = np.zeros((H, W), bool)
    rect[2:8, 3:15] = True
    yy, xx = np.ogrid[:H, :W]
    disk = (yy - 15) ** 2 + (xx - 20) ** 2 <= 36
    return np.stack([rect, disk, np.zeros((H, W), bool)])  # the empty object is skipped


def _batch(ignore=None):
    masks = _objects()
    sample = DetDataSample(metainfo={'img_path': 'x.jpg'})
    sample.gt_instances = InstanceData(masks=BitmapMasks(masks.astype(np.uint8), H, W),
                                       bboxes=torch.tensor([[3, 2, 15, 8], [14, 9, 27, 22],
                                                            [0, 0, 0, 0]], dtype=torch.float32))
    if ignore is not None:
        sample.ignore_mask = PixelData(data=torch.from_numpy(ignore[None]))
    image = torch.zeros(3, H, W, dtype=torch.uint8)
    return {'inputs': [image], 'data_samples': [sample]}, [sample]


def _evaluate(metric_cfg, ignore=None):
    evaluator = Evaluator([METRICS.build(metric_cfg)])
    batch, samples = _batch(ignore)
    evaluator.process(samples, batch)
    evaluator.process(samples, batch)
    return evaluator.evaluate(2)  # two samples (the same one twice): four objects


def test_metric_matches_the_functional_protocol():
    out = _evaluate(dict(type='InteractiveSegMetric', predictor=DiskPredictor(radius=4),
                         max_clicks=5, noc_thrs=(0.5, 0.85)))
    masks = _objects()
    image = np.zeros((H, W, 3), np.uint8)
    expected = [evaluate_object(image, m.astype(np.int64), DiskPredictor(radius=4), 5)
                for m in masks[:2]]
    ious = [r['ious'] for r in expected] * 2
    nocs, nofs = compute_noc(ious, (0.5, 0.85), 5)
    assert out['interactive/NoC@0.5'] == nocs[0] and out['interactive/NoF@0.85'] == nofs[1]
    assert [out[f'interactive/mIoU@{k}'] for k in range(1, 6)] == pytest.approx(
        miou_at_clicks(ious, 5).tolist())
    # Box prompts (the GT boxes): the toy fills the box, exact for the rectangle, for the disk
    # |disk| / |13 x 13 box|.
    assert out['interactive/box_mIoU'] == pytest.approx((1 + masks[1].sum() / 169) / 2)
    assert out['interactive/num_objects'] == 4


def test_ignore_mask_is_never_clicked():
    ignore = np.zeros((H, W), bool)
    ignore[:, 22:] = True  # right part of the disk's surroundings
    predictor = DiskPredictor(radius=8)  # overshoots -> negative clicks are needed
    metric = METRICS.build(dict(type='InteractiveSegMetric', predictor=predictor, max_clicks=6,
                                box_prompt=False))
    evaluator = Evaluator([metric])
    batch, samples = _batch(ignore)
    evaluator.process(samples, batch)
    out = evaluator.evaluate(1)
    assert 'interactive/box_mIoU' not in out
    masks = _objects()
    clicks = [c for call in predictor.calls for c in call['clicks']]
    assert clicks and not any(ignore[c.y, c.x] and not masks[:2, c.y, c.x].any() for c in clicks)


def test_early_stop_reports_only_one_click_miou_and_missing_predictor_fails():
    out = _evaluate(dict(type='InteractiveSegMetric', predictor=DiskPredictor(radius=4),
                         max_clicks=10, target_iou=0.3, box_prompt=False))
    assert 'interactive/mIoU@1' in out and 'interactive/mIoU@2' not in out
    evaluator = Evaluator([METRICS.build(dict(type='InteractiveSegMetric'))])
    batch, samples = _batch()
    with pytest.raises(RuntimeError, match='bind_predictor'):
        evaluator.process(samples, batch)
    evaluator.metrics[0].bind_predictor(DiskPredictor())
    evaluator.process(samples, batch)
    assert [len(objects) for objects in evaluator.metrics[0].results] == [2]  # one per sample
