"""COCO panoptic as ``MultiTaskDataset`` sources of the staged FastSAM2 recipe.

- ``coco_panoptic_source`` (task ``'panoptic'``): large-scale-jitter crops, no prompts: the
  object queries (Hungarian-matched panoptic segments).
- ``coco_interactive_source`` (task ``'interactive'``): the same images with the prompts stored
  offline in ``fastsam2_interactive.json`` (``coco_to_interactive_prompts.py`` over the PANOPTIC
  json: things and stuff), mapped through the augmentation by ``LoadStoredPrompts``.

Paths follow ``data/README.md``; the ``*_source`` dicts go into
``dict(type=MultiTaskDataset, sources=dict(name=source, ...))``.
"""
from mmcv.transforms import LoadImageFromFile, RandomResize
from mmdet.datasets.transforms import RandomCrop, RandomFlip, Resize

from seg.datasets import CocoPanopticPromptFileDataset, CocoPanopticSegDataset
from seg.datasets.transforms import LoadCocoPanopticAnnotations, LoadStoredPrompts, PackSegInputs

coco_data_root = 'data/coco/'
coco_prompt_file = 'data/annotations/fastsam2_interactive.json'
coco_crop_size = (1024, 1024)
coco_num_thing_classes = 80

coco_panoptic_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadCocoPanopticAnnotations, with_bbox=True, with_mask=True, with_seg=True),
    dict(type=RandomFlip, prob=0.5),
    dict(type=RandomResize, scale=coco_crop_size, ratio_range=(0.1, 2.0), resize_type=Resize,
         keep_ratio=True),
    dict(type=RandomCrop, crop_size=coco_crop_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type=PackSegInputs),
]
# the stored prompts go after every geometric transform, before packing
coco_interactive_pipeline = coco_panoptic_pipeline[:-1] + [
    dict(type=LoadStoredPrompts, max_objects=20, num_thing_classes=coco_num_thing_classes,
         point_prob=1.0, box_prob=0.5, text_prob=0.5),
    dict(type=PackSegInputs),
]

_coco_train = dict(data_root=coco_data_root, ann_file='annotations/panoptic_train2017.json',
                   data_prefix=dict(img='train2017/', seg='annotations/panoptic_train2017/'),
                   filter_cfg=dict(filter_empty_gt=True, min_size=32))
coco_panoptic_source = dict(
    task='panoptic', ratio=1.0,
    dataset=dict(type=CocoPanopticSegDataset, pipeline=coco_panoptic_pipeline, **_coco_train))
coco_interactive_source = dict(
    task='interactive', ratio=1.0,
    dataset=dict(type=CocoPanopticPromptFileDataset, prompt_file=coco_prompt_file,
                 pipeline=coco_interactive_pipeline, **_coco_train))
