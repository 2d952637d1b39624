"""A tiny RapSAM (random init, ~1M trainable parameters) on COCO-panoptic-format data.

For tests, the quickstart and CPU demos: same code paths as the full models, sizes shrunk.
Point ``data_root`` at any COCO-panoptic-format folder (``annotations/panoptic_{train,val}2017.json``
+ PNG folders, ``{train,val}2017/`` images).
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.coco_panoptic_interactive import *  # noqa: F401,F403
    from .._base_.default_runtime import *  # noqa: F401,F403
    from .._base_.models.clip_backbones import tiny_resnet_clip, tiny_resnet_clip_channels
    from .._base_.models.rapsam import *  # noqa: F401,F403
    from .._base_.schedules.schedule_90k import *  # noqa: F401,F403

from mmdet.datasets.transforms import Resize

model.update(backbone=tiny_resnet_clip, class_names=class_names)
model.neck.update(in_channels=tiny_resnet_clip_channels, agg_dim=32, hidden_dim=32)
model.panoptic_head.update(num_queries=10, num_stages=2, feat_channels=32, num_heads=4,
                           ffn_channels=64, text_dim=32, train_cfg=dict(num_points=256))

image_size = (128, 128)
train_pipeline[3].update(scale=image_size, ratio_range=(0.8, 1.2))
train_pipeline[4].update(crop_size=image_size)
train_pipeline[5].update(max_objects=4)
test_pipeline[1].update(scale=(256, 256))
# the dataloaders hold copies of the base pipelines: hand them the edited ones
train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader.dataset.pipeline = train_pipeline
val_dataloader.update(num_workers=0, persistent_workers=False)
val_dataloader.dataset.pipeline = test_pipeline
test_dataloader = val_dataloader

max_iters = 200
train_cfg.update(max_iters=max_iters, val_interval=max_iters)
param_scheduler[0].update(end=10)
param_scheduler[1].update(begin=10, end=max_iters)
default_hooks.logger.interval = 10
default_hooks.checkpoint.interval = 100
optim_wrapper.clip_grad = dict(max_norm=1.0, norm_type=2)
