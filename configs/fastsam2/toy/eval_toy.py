"""Evaluation settings shared by the toy evaluation configs (``eval_{panoptic,interactive,vos}_toy.py``):
the toy stage-4 model (every task in one model) at a 256-px processing size, no training data.

Each of them evaluates one task of a toy-trained checkpoint with ``tools/test.py``, e.g.::

    python tools/test.py configs/fastsam2/toy/eval_panoptic_toy.py work_dirs/fastsam2_toy_stage4/iter_200.pth
"""
from mmengine.config import read_base

with read_base():
    from .stage4_tiny_toy import *  # noqa: F401,F403

from mmcv.transforms import LoadImageFromFile
from mmengine.dataset import DefaultSampler
from mmengine.runner import TestLoop
from mmdet.datasets.transforms import Resize

from seg.datasets import CocoPanopticSegDataset
from seg.datasets.transforms import LoadCocoPanopticAnnotations, PackSegInputs

load_from = None  # tools/test.py names the checkpoint
test_cfg = dict(type=TestLoop)
model.data_preprocessor.resize_longest_side = 256
eval_coco_root = toy_root + 'coco/'
eval_coco_val = dict(
    type=CocoPanopticSegDataset, data_root=eval_coco_root, test_mode=True,
    ann_file='annotations/panoptic_val2017.json',
    data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'),
    # the model's label space: the toy vocabulary (its 'object' class is DAVIS's), not COCO's list
    metainfo=dict(classes=toy_vocabulary, thing_classes=toy_vocabulary_things,
                  stuff_classes=toy_stuff_classes))
eval_image_meta = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')
eval_panoptic_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=Resize, scale=(256, 256), keep_ratio=True),
    dict(type=LoadCocoPanopticAnnotations, with_bbox=True, with_mask=True, with_seg=True),
    dict(type=PackSegInputs, meta_keys=eval_image_meta + ('seg_map_path', 'segments_info')),
]
# the click protocol compares with GT at the original size: the preprocessor resizes on the device
eval_interactive_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadCocoPanopticAnnotations, with_bbox=True, with_mask=True, with_seg=False),
    dict(type=PackSegInputs, meta_keys=eval_image_meta),
]
eval_loader = dict(batch_size=1, num_workers=0, persistent_workers=False, drop_last=False,
                   sampler=dict(type=DefaultSampler, shuffle=False))
