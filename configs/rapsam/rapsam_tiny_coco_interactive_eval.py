"""Interactive (click protocol) evaluation of the tiny RapSAM on COCO-panoptic-format data: images
and GT masks at their original size, resized on the device. For CPU checks of the evaluation path.

    python tools/test.py configs/rapsam/rapsam_tiny_coco_interactive_eval.py CHECKPOINT
"""
from mmengine.config import read_base

from seg.engine.hooks import BindInteractivePredictorHook

with read_base():
    from .rapsam_tiny_coco_panoptic import *  # noqa: F401,F403

model.data_preprocessor.resize_longest_side = 256
test_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False, drop_last=False,
                       sampler=val_dataloader.sampler,
                       dataset=dict(val_dataloader.dataset, pipeline=interactive_test_pipeline))
test_evaluator = interactive_evaluator
custom_hooks = [dict(type=BindInteractivePredictorHook)]
