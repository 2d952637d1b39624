"""Toy stage 3 (VOS: memory, DPSR, clip-length curriculum 2-3 -> 3-4 frames): ``stage3_vos``'s
recipe on the tiny model and the toy YouTube-VIS + DAVIS clips (``toy_base``); no teacher.

    python tools/train_fast_sam2.py configs/fastsam2/toy/stage3_tiny_toy.py --stage 3 \
        --load-from work_dirs/fastsam2_toy_stage2/iter_40.pth
"""
from mmengine.config import read_base

with read_base():
    from ..stage3_vos import *  # noqa: F401,F403
    from .toy_base import (toy_davis_vos_source, toy_model, toy_vocabulary, toy_vocabulary_things,
                            toy_ytvis_vos_source)

from seg.engine.hooks import ClipLengthCurriculumHook

work_dir = 'work_dirs/fastsam2_toy_stage3'
load_from = 'work_dirs/fastsam2_toy_stage2/iter_40.pth'
model = toy_model
model.update(teacher=None, distill=None)
model.backbone.distill_keys = ()
sync_bn = None

max_iters = 40
short_clips, long_clips = (2, 3), (3, 4)
train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader.sampler.update(batch_size=2, clip_length=short_clips)
train_dataloader.dataset.update(
    sources=dict(ytvis_vos=toy_ytvis_vos_source, davis_vos=toy_davis_vos_source),
    classes=toy_vocabulary, num_thing_classes=len(toy_vocabulary_things), aliases=None)
custom_hooks = [dict(type=ClipLengthCurriculumHook,
                     schedule=[(0, short_clips), (max_iters // 2, long_clips)])]

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
del toy_model, toy_ytvis_vos_source, toy_davis_vos_source, toy_vocabulary, toy_vocabulary_things
