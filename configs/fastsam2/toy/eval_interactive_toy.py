"""Interactive segmentation (RITM click protocol: NoC / NoF / mIoU@k, box mIoU) of the toy stage-4
model on the toy COCO-panoptic val split; the previous mask is fed back with each click."""
from mmengine.config import read_base

with read_base():
    from .eval_toy import *  # noqa: F401,F403

from seg.engine.hooks import BindInteractivePredictorHook
from seg.evaluation.metrics import InteractiveSegMetric

test_dataloader = dict(eval_loader, dataset=dict(eval_coco_val, pipeline=eval_interactive_pipeline))
test_evaluator = dict(type=InteractiveSegMetric, max_clicks=10, box_prompt=True)
custom_hooks = [dict(type=BindInteractivePredictorHook, feed_prev_mask=True)]
