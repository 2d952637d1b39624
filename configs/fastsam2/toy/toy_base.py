"""Shared pieces of the toy stage configs (``toy/stage{1..4}_tiny_toy.py``): the tiny FastSAM2
model (``model_fastsam2_tiny``) with the stages' model edits, a tiny RANDOM SAM2 teacher, and the
toy dataset (``python tools/data/make_toy_dataset.py data/toy``) as training sources, at 128 px.

The offline prompt / clip files the stage-2 and stage-4 sources read::

    python tools/dataset_converters/coco_to_interactive_prompts.py \
        data/toy/coco/annotations/panoptic_train2017.json data/toy/annotations/fastsam2_interactive.json \
        --panoptic-dir data/toy/coco/annotations/panoptic_train2017
    python tools/dataset_converters/ytvis_to_interactive_clips.py \
        data/toy/youtube_vis_2019/train.json data/toy/annotations/ytvis_interactive_meta.pkl \
        --clip-length 2 4

The teacher's weights are random: the toy stages exercise the recipe end to end (and what the
student learns from the ground truth); real distillation needs a SAM2 checkpoint.
"""
from mmengine.config import read_base

with read_base():
    from ..model_fastsam2_tiny import model as tiny_fastsam2
    from ..._base_.models.clip_backbones import tiny_resnet_clip_channels
    from ..._base_.models.sam2_teachers import (sam2_tiny_random_teacher,
                                                 sam2_tiny_random_teacher_channels)

from mmcv.transforms import LoadImageFromFile, RandomResize, TransformBroadcaster
from mmdet.datasets.transforms import RandomCrop, RandomFlip, Resize

from seg.datasets import (CocoPanopticPromptFileDataset, CocoPanopticSegDataset, DAVISDataset,
                          YouTubeVIS2019Dataset, YouTubeVISClipFileDataset)
from seg.datasets.transforms import (FirstFrameMaskPrompts, GenerateVideoPrompts,
                                     LoadCocoPanopticAnnotations, LoadStoredPrompts,
                                     LoadVideoFrameAnnotations, PackSegInputs, PackSegTrackInputs,
                                     SampleVideoClip)
from seg.models import VideoSegDataPreprocessor
from seg.models.utils import SAM2DistillLoss

toy_root = 'data/toy/'
# seg.datasets.toy_dataset's classes (written out: configs import lazily), and the vocabulary:
# the toy things, DAVIS's class-agnostic 'object', the toy stuff
toy_thing_classes = ('disc', 'box', 'triangle')
toy_stuff_classes = ('sky', 'grass')
toy_vocabulary_things = toy_thing_classes + ('object', )
toy_vocabulary = toy_vocabulary_things + toy_stuff_classes
toy_crop = (128, 128)

# ---------------------------------------------------------------- model
toy_model = tiny_fastsam2
toy_model.update(class_names=toy_vocabulary)
toy_model.panoptic_head.update(num_things_classes=len(toy_vocabulary_things),
                               num_stuff_classes=len(toy_stuff_classes))
toy_model.data_preprocessor.type = VideoSegDataPreprocessor
toy_model.backbone.distill_keys = ('stage2', 'fused')
toy_distill = dict(
    type=SAM2DistillLoss, alpha=1.0, beta=0.5, gamma=1.0, delta=0.2, loss_weight=1.0,
    pairs=[dict(student='neck', teacher=0, student_channels=32,
                teacher_channels=sam2_tiny_random_teacher_channels[0], weight=1.0),
           dict(student='stage2', teacher=1, student_channels=tiny_resnet_clip_channels[1],
                teacher_channels=sam2_tiny_random_teacher_channels[1], weight=0.5),
           dict(student='fused', teacher=2, student_channels=tiny_resnet_clip_channels[2],
                teacher_channels=sam2_tiny_random_teacher_channels[2], weight=1.0)])
toy_model.update(teacher=sam2_tiny_random_teacher, distill=toy_distill)

# ---------------------------------------------------------------- data
_coco = dict(data_root=toy_root + 'coco/', ann_file='annotations/panoptic_train2017.json',
             data_prefix=dict(img='train2017/', seg='annotations/panoptic_train2017/'),
             metainfo=dict(classes=toy_thing_classes + toy_stuff_classes,
                           thing_classes=toy_thing_classes, stuff_classes=toy_stuff_classes))
toy_coco_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadCocoPanopticAnnotations, with_bbox=True, with_mask=True, with_seg=True),
    dict(type=RandomFlip, prob=0.5),
    dict(type=RandomResize, scale=toy_crop, ratio_range=(0.8, 1.2), resize_type=Resize,
         keep_ratio=True),
    dict(type=RandomCrop, crop_size=toy_crop, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type=PackSegInputs),
]
toy_coco_interactive_pipeline = toy_coco_pipeline[:-1] + [
    dict(type=LoadStoredPrompts, max_objects=4, num_thing_classes=len(toy_thing_classes)),
    dict(type=PackSegInputs),
]
_ytvis = dict(data_root=toy_root + 'youtube_vis_2019/', ann_file='train.json',
              data_prefix=dict(img='train/JPEGImages/'), metainfo=dict(classes=toy_thing_classes))
_load_frame = [dict(type=LoadImageFromFile), dict(type=LoadVideoFrameAnnotations),
               dict(type=Resize, scale=toy_crop, keep_ratio=True), dict(type=RandomFlip, prob=0.5)]
toy_frame_pipeline = [
    dict(type=SampleVideoClip, clip_length=1),
    dict(type=TransformBroadcaster, share_random_params=True, transforms=_load_frame),
    dict(type=GenerateVideoPrompts, frames='first', max_objects=4),
    dict(type=PackSegTrackInputs),
]
toy_interactive_clip_pipeline = [
    dict(type=SampleVideoClip, clip_length=None),
    dict(type=TransformBroadcaster, share_random_params=True, transforms=_load_frame),
    dict(type=LoadStoredPrompts, max_objects=4),
    dict(type=PackSegTrackInputs),
]
toy_vos_pipeline = [
    dict(type=SampleVideoClip, clip_length=(2, 3)),
    dict(type=TransformBroadcaster, share_random_params=True, transforms=_load_frame),
    dict(type=FirstFrameMaskPrompts, allow_empty=True),
    dict(type=PackSegTrackInputs),
]

toy_coco_panoptic_source = dict(task='panoptic', ratio=1.0, dataset=dict(
    type=CocoPanopticSegDataset, pipeline=toy_coco_pipeline, **_coco))
toy_coco_interactive_source = dict(task='interactive', ratio=1.0, dataset=dict(
    type=CocoPanopticPromptFileDataset,
    prompt_file=toy_root + 'annotations/fastsam2_interactive.json',
    pipeline=toy_coco_interactive_pipeline, **_coco))
toy_ytvis_frame_source = dict(task='interactive', ratio=1.0, dataset=dict(
    type=YouTubeVIS2019Dataset, pipeline=toy_frame_pipeline, **_ytvis))
toy_ytvis_interactive_source = dict(task='interactive', ratio=1.0, dataset=dict(
    type=YouTubeVISClipFileDataset, clip_file=toy_root + 'annotations/ytvis_interactive_meta.pkl',
    pipeline=toy_interactive_clip_pipeline, **_ytvis))
toy_ytvis_vos_source = dict(task='vos', ratio=1.0, dataset=dict(
    type=YouTubeVIS2019Dataset, pipeline=toy_vos_pipeline, **_ytvis))
toy_davis_vos_source = dict(task='vos', ratio=1.0, dataset=dict(
    type=DAVISDataset, data_root=toy_root + 'davis2017/', year='2017', split='train',
    pipeline=toy_vos_pipeline))
