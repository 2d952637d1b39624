"""FastSAM2 stage 5 — deployment: the stage-4 model with its test-time settings; no training data.

``tools/train_fast_sam2.py configs/fastsam2/stage5_deploy.py --stage 5`` loads ``load_from`` (the
stage-4 checkpoint), drops what only training uses (the distillation projections; the teacher is
never in a checkpoint) and writes ``<work_dir>/fastsam2_deploy.pth`` (weights + this config in its
meta). Then:

    python tools/test.py configs/fastsam2/stage5_deploy.py work_dirs/fastsam2_stage5/fastsam2_deploy.pth
        # DAVIS 2017 val, semi-supervised J&F (streaming memory)
    python tools/benchmark/benchmark_modes.py   # latency / FLOPs per mode (tiny sizes)

Test-time settings (each a config key, change with ``--cfg-options``):

- processing size: ``model.data_preprocessor.resize_longest_side`` = 1024 — every input is decoded
  once on the CPU and resized on the device so its longer side is 1024 (1080p -> 1024x576);
  prompts and outputs are mapped back to the original resolution.
- router rules (``model.task_router.rules``): interactive 2 decoder stages, prompt queries only;
  VOS 3 stages + streaming memory; panoptic 3 stages, every query, no pruning. Depths other than
  the trained ones (the routed exits stages 2-4 supervised) need retraining.
- token pruner: ``model.backbone.token_pruner.keep_ratio`` = 0.5 (as trained; lower it for speed
  at some accuracy cost, see ``tools/benchmark/benchmark_token_pruner.py``), scores refreshed every
  ``refresh_period`` = 4 frames of a video.
- streaming memory (``model.memory``): 4 long-term (prompted + key frames) + 4 short-term entries
  per object: constant memory and compute per frame.
"""
from mmengine.config import read_base

with read_base():
    from .stage4_joint import *  # noqa: F401,F403
    from .._base_.datasets.davis import davis_val_dataloader, davis_val_evaluator

from mmengine.runner import TestLoop

stage = 5
work_dir = 'work_dirs/fastsam2_stage5'
load_from = 'work_dirs/fastsam2_stage4/iter_20000.pth'

model.teacher = None
model.distill = None
model.backbone.distill_keys = ()
model.data_preprocessor.resize_longest_side = 1024
model.task_router.rules = dict(
    interactive=dict(num_stages=2, query_set='prompt', unprompted_query_set=None,
                     use_memory=True, memory_min_frames=2, use_pruner=False),
    vos=dict(num_stages=3, query_set='prompt', unprompted_query_set='prompt', use_memory=True,
             memory_min_frames=1, use_pruner=False),
    panoptic=dict(num_stages=3, query_set='both', unprompted_query_set='object', use_memory=False,
                  memory_min_frames=1, use_pruner=False))
model.backbone.token_pruner.update(keep_ratio=0.5, refresh_period=4)

# no training
train_dataloader = train_cfg = optim_wrapper = param_scheduler = auto_scale_lr = None
custom_hooks = []
test_dataloader = davis_val_dataloader
test_evaluator = dict(davis_val_evaluator, outfile_dir='work_dirs/fastsam2_stage5/davis_results')
test_cfg = dict(type=TestLoop)
del davis_val_dataloader, davis_val_evaluator
