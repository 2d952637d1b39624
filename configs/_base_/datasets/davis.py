"""DAVIS 2017 for the staged FastSAM2 recipe: ``davis_vos_source`` (task ``'vos'``, the train
split's clips with first-frame mask prompts, clip length from the sampler's curriculum) and the
semi-supervised evaluation on the val split (whole videos streamed, J&F by ``DAVISMetric``)."""
from mmcv.transforms import LoadImageFromFile, TransformBroadcaster
from mmdet.datasets.transforms import RandomFlip, Resize
from mmengine.dataset import DefaultSampler

from seg.datasets import DAVISDataset
from seg.datasets.transforms import (FirstFrameMaskPrompts, LoadVideoFrameAnnotations,
                                     PackSegTrackInputs, SampleVideoClip)
from seg.evaluation.metrics import DAVISMetric

davis_data_root = 'data/DAVIS/'
davis_frame_size = (640, 360)  # 854x480 -> 640x360

davis_vos_pipeline = [
    dict(type=SampleVideoClip, clip_length=(4, 6), stride=(1, 2)),
    dict(type=TransformBroadcaster, share_random_params=True,
         transforms=[dict(type=LoadImageFromFile), dict(type=LoadVideoFrameAnnotations),
                     dict(type=Resize, scale=davis_frame_size, keep_ratio=True),
                     dict(type=RandomFlip, prob=0.5)]),
    dict(type=FirstFrameMaskPrompts, allow_empty=True),
    dict(type=PackSegTrackInputs),
]
# evaluation: frames at their original size (the model's preprocessor resizes on the device)
davis_test_pipeline = [
    dict(type=SampleVideoClip, clip_length=None),
    dict(type=TransformBroadcaster, share_random_params=True,
         transforms=[dict(type=LoadImageFromFile), dict(type=LoadVideoFrameAnnotations)]),
    dict(type=FirstFrameMaskPrompts),
    dict(type=PackSegTrackInputs),
]

davis_vos_source = dict(
    task='vos', ratio=1.0,
    dataset=dict(type=DAVISDataset, data_root=davis_data_root, year='2017', split='train',
                 pipeline=davis_vos_pipeline))
davis_val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(type=DAVISDataset, data_root=davis_data_root, year='2017', split='val',
                 test_mode=True, pipeline=davis_test_pipeline))
davis_val_evaluator = dict(type=DAVISMetric, binary_masks=False)
