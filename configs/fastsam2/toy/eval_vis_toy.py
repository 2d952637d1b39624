"""Video instance segmentation (YouTube-VIS 2019 mask mAP) of the toy stage-4 model on the toy
YouTube-VIS split: every video decoded whole by the object queries (no prompts), each of the top
``max_per_video`` (query, class) pairs a track with per-frame masks and boxes.

    python tools/test.py configs/fastsam2/toy/eval_vis_toy.py work_dirs/fastsam2_toy_stage4/iter_200.pth

The toy dataset has one annotated YouTube-VIS split (``train.json``); it is evaluated here.
"""
from mmengine.config import read_base

with read_base():
    from .eval_toy import *  # noqa: F401,F403

from mmcv.transforms import LoadImageFromFile, TransformBroadcaster

from seg.datasets import YouTubeVIS2019Dataset
from seg.datasets.transforms import LoadVideoFrameAnnotations, PackSegTrackInputs, SampleVideoClip
from seg.evaluation.metrics import YouTubeVIS2019Metric

model.test_cfg.update(max_per_video=10)
test_dataloader = dict(eval_loader, dataset=dict(
    type=YouTubeVIS2019Dataset, data_root=toy_root + 'youtube_vis_2019/', ann_file='train.json',
    data_prefix=dict(img='train/JPEGImages/'), test_mode=True,
    # the model's label space (the toy vocabulary); the metric's categories follow it
    metainfo=dict(classes=toy_vocabulary),
    pipeline=[dict(type=SampleVideoClip, clip_length=None),
              dict(type=TransformBroadcaster, share_random_params=True,
                   transforms=[dict(type=LoadImageFromFile), dict(type=LoadVideoFrameAnnotations)]),
              dict(type=PackSegTrackInputs)]))
test_evaluator = dict(type=YouTubeVIS2019Metric, metric_items=['mAP', 'mAP_50', 'mAP_75'])
