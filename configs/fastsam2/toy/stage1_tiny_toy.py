"""Toy stage 1 (backbone distillation): ``stage1_backbone_distill``'s recipe on the tiny model, the
toy data and a tiny random SAM2 teacher (``toy_base``); for the quickstart and the tests.

    python tools/train_fast_sam2.py configs/fastsam2/toy/stage1_tiny_toy.py --stage 1
"""
from mmengine.config import read_base

with read_base():
    from ..stage1_backbone_distill import *  # noqa: F401,F403
    from .toy_base import (toy_coco_panoptic_source, toy_model, toy_vocabulary,
                            toy_vocabulary_things, toy_ytvis_frame_source)

work_dir = 'work_dirs/fastsam2_toy_stage1'
model = toy_model
sync_bn = None  # one CPU process
train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader.sampler.batch_size = 2
train_dataloader.dataset.update(
    sources=dict(coco_panoptic=toy_coco_panoptic_source, ytvis_frames=toy_ytvis_frame_source),
    classes=toy_vocabulary, num_thing_classes=len(toy_vocabulary_things), aliases=None)

max_iters = 40
warmup_iters = max_iters // 20
train_cfg.update(max_iters=max_iters, val_interval=max_iters)
param_scheduler[0].update(end=warmup_iters)
param_scheduler[1].update(begin=warmup_iters, end=max_iters)
optim_wrapper.optimizer.lr = 1e-3
optim_wrapper.clip_grad.max_norm = 1.0
default_hooks.logger.interval = 10
default_hooks.checkpoint.update(interval=max_iters, max_keep_ckpts=1)
auto_scale_lr.base_batch_size = 2

# keep the config to what it runs: the runner formats the whole config (yapf) several times
del toy_model, toy_coco_panoptic_source, toy_ytvis_frame_source, toy_vocabulary, toy_vocabulary_things
