"""The tiny RapSAM trained on the toy dataset (``tools/data/make_toy_dataset.py data/toy``) on CPU:
3 thing classes + 2 stuff classes, 128 px crops, a few hundred iterations. The quickstart's model."""
from mmengine.config import read_base

with read_base():
    from .rapsam_tiny_coco_panoptic import *  # noqa: F401,F403

data_root = 'data/toy/coco/'
# seg.datasets.toy_dataset.PANOPTIC_METAINFO (written out: configs import lazily)
toy_thing_classes = ('disc', 'box', 'triangle')
toy_stuff_classes = ('sky', 'grass')
toy_classes = toy_thing_classes + toy_stuff_classes
metainfo = dict(classes=toy_classes, thing_classes=toy_thing_classes, stuff_classes=toy_stuff_classes)

model.class_names = toy_classes
model.panoptic_head.update(num_things_classes=3, num_stuff_classes=2)
train_pipeline[5].update(num_thing_classes=3, class_names=toy_classes)

train_dataloader.dataset.update(
    data_root=data_root, metainfo=metainfo, ann_file='annotations/panoptic_train2017.json',
    pipeline=train_pipeline,
    data_prefix=dict(img='train2017/', seg='annotations/panoptic_train2017/'), filter_cfg=None)
val_dataloader.dataset.update(
    data_root=data_root, metainfo=metainfo, ann_file='annotations/panoptic_val2017.json',
    data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'))
test_dataloader = val_dataloader
val_evaluator.update(ann_file=data_root + 'annotations/panoptic_val2017.json',
                     seg_prefix=data_root + 'annotations/panoptic_val2017/')
test_evaluator = val_evaluator

max_iters = 300
train_cfg.update(max_iters=max_iters, val_interval=max_iters)
param_scheduler[1].update(end=max_iters)
optim_wrapper.optimizer.lr = 1e-3
optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult = 1.0  # random-init backbone: train it
default_hooks.checkpoint.update(interval=max_iters, max_keep_ckpts=1)
randomness = dict(seed=0)  # the quickstart's numbers are reproducible
