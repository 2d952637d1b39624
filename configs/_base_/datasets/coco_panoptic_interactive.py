"""COCO panoptic for joint panoptic + interactive training (prompts sampled online from the GT)."""
from mmcv.transforms import LoadImageFromFile, RandomResize
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler
from mmdet.datasets import AspectRatioBatchSampler
from mmdet.datasets.transforms import RandomCrop, RandomFlip, Resize

from seg.datasets import CocoPanopticSegDataset
from seg.datasets.transforms import GeneratePrompts, LoadCocoPanopticAnnotations, PackSegInputs
from seg.evaluation.metrics import InteractiveSegMetric, PanopticQualityMetric

with read_base():
    from .coco_panoptic_classes import coco_panoptic_classes as class_names

data_root = 'data/coco/'
num_things_classes, num_stuff_classes = 80, 53
image_size = (1024, 1024)

train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadCocoPanopticAnnotations, with_bbox=True, with_mask=True, with_seg=True),
    dict(type=RandomFlip, prob=0.5),
    # large-scale jitter, as Mask2Former / RapSAM train
    dict(type=RandomResize, scale=image_size, ratio_range=(0.1, 2.0), resize_type=Resize,
         keep_ratio=True),
    dict(type=RandomCrop, crop_size=image_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type=GeneratePrompts, max_objects=20, num_thing_classes=num_things_classes,
         class_names=class_names),
    dict(type=PackSegInputs),
]
test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=Resize, scale=image_size, keep_ratio=True),
    dict(type=LoadCocoPanopticAnnotations, with_bbox=True, with_mask=True, with_seg=True),
    dict(type=PackSegInputs, meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                        'scale_factor', 'seg_map_path', 'segments_info')),
]

train_dataloader = dict(
    batch_size=2, num_workers=2, persistent_workers=True,
    sampler=dict(type=DefaultSampler, shuffle=True),
    batch_sampler=dict(type=AspectRatioBatchSampler),
    dataset=dict(type=CocoPanopticSegDataset, data_root=data_root,
                 ann_file='annotations/panoptic_train2017.json',
                 data_prefix=dict(img='train2017/', seg='annotations/panoptic_train2017/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(type=CocoPanopticSegDataset, data_root=data_root,
                 ann_file='annotations/panoptic_val2017.json',
                 data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'),
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type=PanopticQualityMetric,
                     ann_file=data_root + 'annotations/panoptic_val2017.json',
                     seg_prefix=data_root + 'annotations/panoptic_val2017/')
test_evaluator = val_evaluator

# Interactive evaluation (RITM click protocol, NoC / NoF / mIoU@k, box mIoU): images and GT masks at
# their original size, the model's preprocessor resizes on the device. Use with
# ``BindInteractivePredictorHook`` (see configs/rapsam/*_interactive_eval.py).
interactive_test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadCocoPanopticAnnotations, with_bbox=True, with_mask=True, with_seg=False),
    dict(type=PackSegInputs, meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                        'scale_factor')),
]
interactive_evaluator = dict(type=InteractiveSegMetric, max_clicks=20, box_prompt=True)
