"""Clip sampling for the unified video format (see ``seg.datasets.base_video_dataset``)."""
from typing import Optional, Sequence

import numpy as np
from mmdet.datasets.transforms import BaseFrameSample

from seg.datasets.clip_sampling import IntOrRange, as_range, draw_from_range, sample_clip_indices
from seg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SampleVideoClip(BaseFrameSample):
    """Pick a clip of a video and turn the video dict into per-frame lists (mmdet's format).

    The clip length is ``results['clip_length']`` when the sampler set it
    (``VOSCurriculumSampler``), else drawn from ``clip_length``; ``clip_length=None`` takes the
    whole video (evaluation). Frames are ``stride`` apart from a random start (see
    ``sample_clip_indices``). Randomness comes from numpy's global state (seeded per worker by
    mmengine).

    Args:
        clip_length: frames per clip: int, inclusive ``(min, max)`` range, or None (all frames).
        stride: frame step, int or inclusive ``(min, max)`` range.
        collect_video_keys: video-level keys copied into every frame.
    """

    def __init__(self,
                 clip_length: Optional[IntOrRange] = (8, 16),
                 stride: IntOrRange = 1,
                 collect_video_keys: Sequence[str] = ('video_id', 'video_name', 'video_length')) -> None:
        if clip_length is not None:
            as_range(clip_length, 'SampleVideoClip: clip_length')
        as_range(stride, 'SampleVideoClip: stride')
        self.clip_length = clip_length
        self.stride = stride
        super().__init__(collect_video_keys=list(collect_video_keys))

    def transform(self, video_infos: dict) -> dict:
        length = video_infos['video_length']
        if length < 1 or not video_infos.get('images'):
            raise ValueError(f"SampleVideoClip: video {video_infos.get('video_name')!r} has no frames")
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        clip_length = video_infos.get('clip_length')
        if clip_length is None:
            if self.clip_length is None:
                return self.prepare_data(video_infos, list(range(length)))
            clip_length = draw_from_range(self.clip_length, rng, 'clip_length')
        stride = draw_from_range(self.stride, rng, 'stride')
        return self.prepare_data(video_infos, sample_clip_indices(length, clip_length, stride, rng))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(clip_length={self.clip_length}, stride={self.stride}, '
                f'collect_video_keys={self.collect_video_keys})')
