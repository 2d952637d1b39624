"""Toy stage 4 (joint: panoptic + interactive + VOS, alternating task batches by ratio, TaskRouter
on, teacher at half weight): ``stage4_joint``'s recipe on the tiny model and the toy data.

    python tools/train_fast_sam2.py configs/fastsam2/toy/stage4_tiny_toy.py --stage 4 \
        --load-from work_dirs/fastsam2_toy_stage3/iter_40.pth
"""
from mmengine.config import read_base

with read_base():
    from ..stage4_joint import *  # noqa: F401,F403
    from .toy_base import (toy_coco_interactive_source, toy_coco_panoptic_source,
                           toy_davis_vos_source, toy_model, toy_root, toy_stuff_classes,
                           toy_thing_classes, toy_vocabulary, toy_vocabulary_things,
                           toy_ytvis_interactive_source, toy_ytvis_vos_source)

work_dir = 'work_dirs/fastsam2_toy_stage4'
load_from = 'work_dirs/fastsam2_toy_stage3/iter_40.pth'
model = toy_model
model.distill.update(alpha=0.5, beta=0.25, loss_weight=0.5)  # stage 4's weights
sync_bn = None
train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader.sampler.update(batch_size=2, clip_length=(3, 4))
train_dataloader.dataset.update(
    sources=dict(coco_panoptic=dict(toy_coco_panoptic_source, ratio=1.0),
                 coco_interactive=dict(toy_coco_interactive_source, ratio=0.5),
                 ytvis_interactive=dict(toy_ytvis_interactive_source, ratio=0.5),
                 ytvis_vos=dict(toy_ytvis_vos_source, ratio=0.5),
                 davis_vos=dict(toy_davis_vos_source, ratio=0.5)),
    classes=toy_vocabulary, num_thing_classes=len(toy_vocabulary_things), aliases=None)

max_iters = 200  # most of the toy budget: the joint stage is the one evaluated
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
# (toy_root, the toy class names and the vocabulary stay: the toy evaluation configs read them)
del (toy_model, toy_coco_panoptic_source, toy_coco_interactive_source, toy_ytvis_interactive_source,
     toy_ytvis_vos_source, toy_davis_vos_source)
