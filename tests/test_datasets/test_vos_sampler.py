"""VOSCurriculumSampler: the clip length follows the property, also mid-epoch, with workers=0."""
import pickle

import numpy as np
import pytest
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

from seg.datasets import ClipIndex, VOSCurriculumSampler
from seg.registry import DATA_SAMPLERS, DATASETS


def test_clip_index_is_an_int_that_survives_pickling():
    idx = ClipIndex(7, 5)
    assert idx == 7 and isinstance(idx, int) and [10, 11, 12, 13, 14, 15, 16, 17][idx] == 17
    back = pickle.loads(pickle.dumps(idx))
    assert back == 7 and back.clip_length == 5


def test_lengths_follow_the_range_and_batches_share_one():
    sampler = VOSCurriculumSampler(list(range(40)), clip_length=(4, 6), batch_size=4, seed=0)
    out = list(sampler)
    assert sorted(int(i) for i in out) == list(range(40))
    lengths = [i.clip_length for i in out]
    assert set(lengths) <= {4, 5, 6} and len(set(lengths)) > 1
    for b in range(0, 40, 4):
        assert len(set(lengths[b:b + 4])) == 1


def test_setting_the_property_changes_the_next_index():
    sampler = VOSCurriculumSampler(list(range(10)), clip_length=4, seed=0)
    it = iter(sampler)
    first = [next(it).clip_length for _ in range(3)]
    sampler.clip_length = (12, 16)
    rest = [i.clip_length for i in it]
    assert first == [4, 4, 4] and all(12 <= n <= 16 for n in rest) and len(rest) == 7
    with pytest.raises(ValueError, match='clip_length'):
        sampler.clip_length = (6, 4)


def test_same_seed_and_epoch_same_order_and_lengths():
    def run(epoch):
        s = VOSCurriculumSampler(list(range(20)), clip_length=(4, 6), seed=3)
        s.set_epoch(epoch)
        return [(int(i), i.clip_length) for i in s]

    assert run(0) == run(0) and run(0) != run(1)


def test_dataloader_workers0_with_a_video_dataset(toy):
    pipeline = [dict(type='SampleVideoClip', clip_length=(8, 8)),
                dict(type='TransformBroadcaster', share_random_params=True,
                     transforms=[dict(type='LoadImageFromFile'),
                                 dict(type='LoadVideoFrameAnnotations')]),
                dict(type='PackSegTrackInputs')]
    ds = DATASETS.build(dict(type='DAVISDataset', data_root=str(toy.davis_root), split=None,
                             pipeline=pipeline))
    sampler = DATA_SAMPLERS.build(dict(type='VOSCurriculumSampler', clip_length=2, seed=0),
                                  default_args=dict(dataset=ds))
    loader = DataLoader(ds, batch_size=1, sampler=sampler, num_workers=0, collate_fn=pseudo_collate)
    it = iter(loader)
    np.random.seed(0)
    assert next(it)['inputs'][0].shape[0] == 2
    sampler.clip_length = 5
    assert next(it)['inputs'][0].shape[0] == 5
    assert len(next(it)['data_samples'][0].video_data_samples) == 5
