"""YouTube-VIS 2019 as ``MultiTaskDataset`` sources of the staged FastSAM2 recipe.

- ``ytvis_frame_source`` (task ``'interactive'``): single frames (1-frame clips) with online
  prompts (points / boxes / texts): video-domain images for the stage-1 distillation.
- ``ytvis_interactive_source`` (task ``'interactive'``): the clips stored offline in
  ``ytvis_interactive_meta.pkl`` (``ytvis_to_interactive_clips.py``), each with its stored
  key-frame prompts (objects prompted on whichever frame they appear: mid-clip prompts are trained).
- ``ytvis_vos_source`` (task ``'vos'``): clips whose first frame's ground-truth masks are the
  prompts (the semi-supervised VOS protocol, ``FirstFrameMaskPrompts``); the clip length comes
  from the sampler (``MultiTaskSampler.clip_length``, the curriculum).

Frames are resized so the longer side is ``ytvis_frame_size[0]`` (1280x720 -> 640x360).
"""
from mmcv.transforms import LoadImageFromFile, TransformBroadcaster
from mmdet.datasets.transforms import RandomFlip, Resize

from seg.datasets import YouTubeVIS2019Dataset, YouTubeVISClipFileDataset
from seg.datasets.transforms import (FirstFrameMaskPrompts, GenerateVideoPrompts,
                                     LoadStoredPrompts, LoadVideoFrameAnnotations,
                                     PackSegTrackInputs, SampleVideoClip)

ytvis_data_root = 'data/youtube_vis_2019/'
ytvis_clip_file = 'data/annotations/ytvis_interactive_meta.pkl'
ytvis_frame_size = (640, 360)
ytvis_image_size = (1024, 1024)  # single frames: the image resolution


_load_frame = [dict(type=LoadImageFromFile), dict(type=LoadVideoFrameAnnotations)]
ytvis_clip_transforms = dict(
    type=TransformBroadcaster, share_random_params=True,
    transforms=_load_frame + [dict(type=Resize, scale=ytvis_frame_size, keep_ratio=True),
                              dict(type=RandomFlip, prob=0.5)])
ytvis_image_transforms = dict(
    type=TransformBroadcaster, share_random_params=True,
    transforms=_load_frame + [dict(type=Resize, scale=ytvis_image_size, keep_ratio=True),
                              dict(type=RandomFlip, prob=0.5)])

ytvis_frame_pipeline = [
    dict(type=SampleVideoClip, clip_length=1),
    ytvis_image_transforms,
    dict(type=GenerateVideoPrompts, frames='first', max_objects=10),
    dict(type=PackSegTrackInputs),
]
ytvis_interactive_pipeline = [
    dict(type=SampleVideoClip, clip_length=None),  # the whole stored clip
    ytvis_clip_transforms,
    dict(type=LoadStoredPrompts, max_objects=10, point_prob=1.0, box_prob=0.5, text_prob=0.5),
    dict(type=PackSegTrackInputs),
]
ytvis_vos_pipeline = [
    dict(type=SampleVideoClip, clip_length=(4, 6), stride=(1, 2)),
    ytvis_clip_transforms,
    dict(type=FirstFrameMaskPrompts, allow_empty=True),
    dict(type=PackSegTrackInputs),
]

_ytvis_train = dict(data_root=ytvis_data_root, ann_file='train.json',
                    data_prefix=dict(img='train/JPEGImages/'), on_bad_data='skip')
ytvis_frame_source = dict(
    task='interactive', ratio=1.0,
    dataset=dict(type=YouTubeVIS2019Dataset, pipeline=ytvis_frame_pipeline, **_ytvis_train))
ytvis_interactive_source = dict(
    task='interactive', ratio=1.0,
    dataset=dict(type=YouTubeVISClipFileDataset, clip_file=ytvis_clip_file,
                 pipeline=ytvis_interactive_pipeline, **_ytvis_train))
ytvis_vos_source = dict(
    task='vos', ratio=1.0,
    dataset=dict(type=YouTubeVIS2019Dataset, pipeline=ytvis_vos_pipeline, **_ytvis_train))
