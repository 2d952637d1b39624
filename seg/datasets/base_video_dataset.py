"""The unified video sample format shared by FastSAM2's video datasets (YouTube-VIS, DAVIS).

Every video dataset's ``data_list`` holds one dict per video::

    {'video_id': int, 'video_name': str, 'video_length': int,
     'images': [frame_info, ...]}                      # in temporal order

    frame_info = {'img_path': str, 'img_id': int (unique in the dataset), 'frame_id': int (index),
                  # either per-object annotations (YouTube-VIS) ...
                  'instances': [{'instance_id': int, 'bbox_label': int, 'ignore_flag': 0|1,
                                 'mask': COCO RLE (compressed or not)}, ...],
                  # ... or an id PNG (DAVIS)
                  'seg_map_path': str | None, 'mask_format': 'binary' | 'palette'}

The pipeline starts with ``SampleVideoClip`` (frames -> per-frame lists), then
``TransformBroadcaster`` over ``LoadImageFromFile`` + ``LoadVideoFrameAnnotations`` + geometric
transforms, optional ``GenerateVideoPrompts`` and ``PackSegTrackInputs``, giving an mmdet
``TrackDataSample``.
"""
import warnings
from typing import Any, List

from mmengine.dataset import BaseDataset


class BaseVideoSegDataset(BaseDataset):
    """Base class: ``ClipIndex`` support and the bad-data policy.

    Args:
        on_bad_data: ``'error'`` raises a ``ValueError`` / ``FileNotFoundError`` naming the file
            or video when the annotation is unusable (no frames, missing annotation file,
            inconsistent lengths); ``'skip'`` drops that video with a warning.
        Other args: mmengine ``BaseDataset``.
    """

    def __init__(self, *args, on_bad_data: str = 'error', **kwargs) -> None:
        if on_bad_data not in ('error', 'skip'):
            raise ValueError(f"on_bad_data must be 'error' or 'skip', got {on_bad_data!r}")
        self.on_bad_data = on_bad_data
        super().__init__(*args, **kwargs)

    def bad_data(self, message: str, error: type = ValueError) -> None:
        """Raise ``error(message)``, or warn when ``on_bad_data='skip'`` (the caller then skips)."""
        if self.on_bad_data == 'error':
            raise error(message)
        warnings.warn(f'{message} (skipped: on_bad_data="skip")')

    def check_videos(self, videos: List[dict], source: str) -> List[dict]:
        """Drop (or reject) videos without frames; re-number ``frame_id`` and ``video_length``."""
        kept = []
        for video in videos:
            if not video['images']:
                self.bad_data(f"video {video['video_name']!r} in {source} has no frames")
                continue
            for i, frame in enumerate(video['images']):
                frame['frame_id'] = i
            video['video_length'] = len(video['images'])
            kept.append(video)
        if not kept:
            raise ValueError(f'{source}: no usable video')
        return kept

    def prepare_data(self, idx: int) -> Any:
        data_info = self.get_data_info(int(idx))
        clip_length = getattr(idx, 'clip_length', None)  # set by VOSCurriculumSampler
        if clip_length is not None:
            data_info['clip_length'] = clip_length
        return self.pipeline(data_info)
