"""Clip, tile and key-frame selection rules."""
import numpy as np
import pytest

from seg.datasets.clip_sampling import (
    as_range,
    draw_from_range,
    key_frame_indices,
    sample_clip_indices,
    tile_clips,
)


def test_as_range_and_draw():
    assert as_range(5, 'x') == (5, 5) and as_range((4, 6), 'x') == (4, 6)
    with pytest.raises(ValueError, match='clip_length'):
        as_range((6, 4), 'clip_length')
    with pytest.raises(ValueError, match='stride'):
        as_range(0, 'stride')
    rng = np.random.default_rng(0)
    draws = {draw_from_range((4, 6), rng, 'x') for _ in range(100)}
    assert draws == {4, 5, 6}


def test_sample_clip_indices_lengths_and_strides():
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = sample_clip_indices(30, 8, 3, rng)
        assert len(idx) == 8 and np.all(np.diff(idx) == 3) and 0 <= idx[0] and idx[-1] < 30
    # the stride shrinks to fit: 8 frames with stride 3 need 22 frames, the video has 10
    idx = sample_clip_indices(10, 8, 3, rng)
    assert len(idx) == 8 and np.all(np.diff(idx) == 1)
    # a video shorter than the clip gives the whole video
    assert sample_clip_indices(5, 8, 2, rng) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match='no frames'):
        sample_clip_indices(0, 8, 1, rng)


def test_sample_clip_start_is_uniform():
    rng = np.random.default_rng(1)
    starts = [sample_clip_indices(12, 4, 1, rng)[0] for _ in range(900)]
    counts = np.bincount(starts, minlength=9)
    assert len(counts) == 9 and counts.min() > 60  # 9 possible starts, ~100 each


def test_tile_clips_cover_the_video():
    rng = np.random.default_rng(0)
    clips = tile_clips(40, (8, 16), 1, rng)
    flat = [i for c in clips for i in c]
    assert flat == list(range(len(flat))) and 40 - len(flat) < 8
    assert all(8 <= len(c) <= 16 for c in clips)
    assert tile_clips(5, (8, 16), 1, rng) == [[0, 1, 2, 3, 4]]
    strided = tile_clips(20, 4, 2, rng)
    assert strided[0] == [0, 2, 4, 6] and strided[1][0] == 7


def test_key_frames_first_appearance_plus_spaced():
    presence = np.zeros((10, 3), bool)
    presence[0:4, 0] = True
    presence[3:9, 1] = True
    presence[6:, 2] = True
    assert key_frame_indices(presence, 0) == [0, 3, 6]
    # linspace(0, 9, 3) = 0, 4.5, 9; 4.5 rounds half to even -> 4
    assert key_frame_indices(presence, 3) == [0, 3, 4, 6, 9]
    assert key_frame_indices(np.zeros((4, 0), bool), 2) == [0, 3]
