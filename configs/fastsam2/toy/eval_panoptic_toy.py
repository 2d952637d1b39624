"""Panoptic quality (PQ) of the toy stage-4 model on the toy COCO-panoptic val split."""
from mmengine.config import read_base

with read_base():
    from .eval_toy import *  # noqa: F401,F403

from seg.evaluation.metrics import PanopticQualityMetric

test_dataloader = dict(eval_loader, dataset=dict(eval_coco_val, pipeline=eval_panoptic_pipeline))
test_evaluator = dict(type=PanopticQualityMetric,
                      ann_file=eval_coco_root + 'annotations/panoptic_val2017.json',
                      seg_prefix=eval_coco_root + 'annotations/panoptic_val2017/',
                      # 'object' (DAVIS) is in the vocabulary but not in the COCO json: unlabelled
                      void_unknown_classes=True)
