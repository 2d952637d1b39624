"""Interactive evaluation of the R50 RapSAM on COCO val: every panoptic segment is an object, clicks
follow the RITM protocol (NoC@{.5,.8,.85,.9}, NoF, mIoU@1..20) plus the box-prompt mIoU.

    python tools/test.py configs/rapsam/rapsam_r50_coco_interactive_eval.py CHECKPOINT
"""
from mmengine.config import read_base

from seg.engine.hooks import BindInteractivePredictorHook

with read_base():
    from .rapsam_r50_90k_coco_panoptic import *  # noqa: F401,F403

model.data_preprocessor.resize_longest_side = 1024  # images arrive at their original size
test_dataloader = dict(batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
                       sampler=val_dataloader.sampler,
                       dataset=dict(val_dataloader.dataset, pipeline=interactive_test_pipeline))
test_evaluator = interactive_evaluator
custom_hooks = [dict(type=BindInteractivePredictorHook)]
