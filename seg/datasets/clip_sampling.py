"""Which frames of a video make a training clip, and which frames of a clip get prompts.

Shared by the online pipeline (``SampleVideoClip``, ``GenerateVideoPrompts``) and the offline
YouTube-VIS converter, so offline clips and online clips follow the same rules.
"""
from typing import List, Sequence, Tuple, Union

import numpy as np

IntOrRange = Union[int, Sequence[int]]


def as_range(value: IntOrRange, name: str, minimum: int = 1) -> Tuple[int, int]:
    """``5 -> (5, 5)``; ``(4, 6) -> (4, 6)``; rejects ranges below ``minimum`` or reversed."""
    lo, hi = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if not minimum <= lo <= hi:
        raise ValueError(f'{name} must be an int or an inclusive (min, max) range with '
                         f'{minimum} <= min <= max, got {value}')
    return int(lo), int(hi)


def sample_clip_indices(video_length: int, clip_length: int, stride: int,
                        rng: np.random.Generator) -> List[int]:
    """Frame indices of a clip of ``clip_length`` frames, ``stride`` apart, at a random start.

    When the video is too short for that stride the stride shrinks (down to 1); when it is
    shorter than the clip, the clip is the whole video (``len < clip_length``): padding with
    repeated frames would teach the model that objects freeze.
    """
    if video_length < 1:
        raise ValueError(f'sample_clip_indices: the video has no frames (length {video_length})')
    if clip_length < 1 or stride < 1:
        raise ValueError(f'sample_clip_indices: clip_length and stride must be >= 1, got '
                         f'{clip_length} and {stride}')
    clip_length = min(clip_length, video_length)
    stride = min(stride, max(1, (video_length - 1) // max(clip_length - 1, 1)))
    span = (clip_length - 1) * stride + 1
    start = int(rng.integers(0, video_length - span + 1))
    return list(range(start, start + span, stride))


def tile_clips(video_length: int, clip_length: IntOrRange, stride: IntOrRange,
               rng: np.random.Generator) -> List[List[int]]:
    """Split a video into consecutive clips (offline clip lists): each clip draws its length and
    stride; a tail shorter than the minimum length joins no clip, unless the whole video is that
    short (then the video is one clip)."""
    if video_length < 1:
        raise ValueError(f'tile_clips: the video has no frames (length {video_length})')
    min_len = as_range(clip_length, 'clip_length')[0]
    clips, start = [], 0
    while start < video_length:
        length = draw_from_range(clip_length, rng, 'clip_length')
        step = draw_from_range(stride, rng, 'stride')
        clip = list(range(start, video_length, step))[:length]
        if len(clip) < min_len and clips:
            break
        clips.append(clip)
        start = clip[-1] + 1
    return clips


def key_frame_indices(presence: np.ndarray, num_extra: int) -> List[int]:
    """Key frames of a clip: each object's first appearance plus ``num_extra`` evenly spaced frames.

    Args:
        presence: bool [num_frames, num_objects], True where the object is visible.
        num_extra: evenly spaced frames added over the whole clip (endpoints included when >= 2).
    """
    presence = np.asarray(presence, dtype=bool)
    if presence.ndim != 2:
        raise ValueError(f'key_frame_indices: presence must be [frames, objects], got {presence.shape}')
    num_frames = presence.shape[0]
    keys = {int(np.argmax(col)) for col in presence.T if col.any()}
    if num_extra > 0 and num_frames > 0:
        keys |= {int(round(x)) for x in np.linspace(0, num_frames - 1, num_extra)}
    return sorted(keys)


def draw_from_range(value: IntOrRange, rng: np.random.Generator, name: str, minimum: int = 1) -> int:
    """One integer from an int or an inclusive ``(min, max)`` range."""
    lo, hi = as_range(value, name, minimum)
    return int(rng.integers(lo, hi + 1))
