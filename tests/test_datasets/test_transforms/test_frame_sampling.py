"""SampleVideoClip: per-frame lists, clip length from the sampler or the config."""
import numpy as np
import pytest

from seg.datasets.transforms.frame_sampling import SampleVideoClip


def _video(n=20):
    return dict(video_id=3, video_name='v', video_length=n,
                images=[dict(img_path=f'v/{t:05d}.jpg', frame_id=t, img_id=100 + t) for t in range(n)])


def test_whole_video_when_clip_length_is_none():
    out = SampleVideoClip(clip_length=None)(_video(6))
    assert out['frame_id'] == list(range(6)) and out['video_length'] == [6] * 6
    assert out['video_name'] == ['v'] * 6 and out['video_id'] == [3] * 6


def test_configured_range_and_stride():
    np.random.seed(0)
    t = SampleVideoClip(clip_length=(4, 6), stride=2)
    lengths = set()
    for _ in range(30):
        out = t(_video())
        ids = out['frame_id']
        lengths.add(len(ids))
        assert np.all(np.diff(ids) == 2) and out['video_length'] == [len(ids)] * len(ids)
        assert out['ori_video_length'] == [20] * len(ids)
        assert out['img_path'] == [f'v/{i:05d}.jpg' for i in ids]
    assert lengths == {4, 5, 6}


def test_sampler_length_wins():
    np.random.seed(0)
    out = SampleVideoClip(clip_length=(4, 6))(dict(_video(), clip_length=9))
    assert len(out['frame_id']) == 9
    out = SampleVideoClip(clip_length=None)(dict(_video(), clip_length=3))
    assert len(out['frame_id']) == 3


def test_bad_config_and_empty_video():
    with pytest.raises(ValueError, match='clip_length'):
        SampleVideoClip(clip_length=(6, 4))
    with pytest.raises(ValueError, match="'v' has no frames"):
        SampleVideoClip()(dict(_video(0)))
