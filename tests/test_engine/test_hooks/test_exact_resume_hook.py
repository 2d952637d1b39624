"""ExactResumeHook's parts: the random state survives a checkpoint round trip (weights-only
loading), and the training data iterator resumed at a position yields exactly the batches the
uninterrupted one would have, without loading the skipped ones. (The whole training resume is
tested in tests/test_engine/test_train_resume.py.)"""
import io
import random

import numpy as np
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler
from torch.utils.data import DataLoader, Dataset

from seg.engine.hooks.exact_resume_hook import TrainDataIterator, capture_rng_state, restore_rng_state


def _draws() -> tuple:
    return random.random(), float(np.random.rand()), np.random.normal(), torch.rand(3).tolist()


def test_random_state_round_trip_through_a_checkpoint():
    np.random.normal()  # a cached Gaussian is part of NumPy's state
    buffer = io.BytesIO()
    torch.save(dict(resume_state=dict(rng=capture_rng_state())), buffer)
    expected = _draws()
    buffer.seek(0)
    restore_rng_state(torch.load(buffer, weights_only=True)['resume_state']['rng'])
    assert _draws() == expected


class _CountingDataset(Dataset):
    def __init__(self, n: int) -> None:
        self.n, self.loaded = n, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        self.loaded += 1
        return i


def _loader(sampler_type=DefaultSampler, n: int = 10):
    dataset = _CountingDataset(n)
    sampler = sampler_type(dataset, shuffle=True, seed=3)
    return DataLoader(dataset, batch_size=3, sampler=sampler, collate_fn=list), dataset


def _batches(iterator, count: int) -> list:
    return [next(iterator) for _ in range(count)]


def test_resumed_iterator_continues_the_uninterrupted_order():
    loader, _ = _loader()
    full = TrainDataIterator(loader)
    expected = _batches(full, 11)  # 4 batches per epoch: epochs 0, 1, 2 (reshuffled each)
    assert full.position() == dict(epoch=2, batches=3)
    assert expected[0] != expected[4]

    for k in (2, 4, 6):  # mid epoch, at an epoch's end, mid epoch of the next
        ref = TrainDataIterator(_loader()[0])
        _batches(ref, k)
        position = ref.position()
        loader, dataset = _loader()
        calls = []
        resumed = TrainDataIterator(loader, **position, first_iteration=k - position['batches'],
                                    before_batch=calls.append, noop_calls=k)
        assert _batches(resumed, k) == [None] * k  # mmengine's replay: nothing loaded
        assert dataset.loaded == 0
        assert _batches(resumed, 11 - k) == expected[k:]
        assert dataset.loaded == sum(len(b) for b in expected[k:])  # the skipped ones: never
        # the sampler was prepared for every skipped batch and the first real one
        if position['batches']:
            assert calls == list(range(k - position['batches'], k + 1))


def test_resume_with_an_infinite_sampler():
    full = TrainDataIterator(_loader(InfiniteSampler)[0])
    expected = _batches(full, 9)
    resumed = TrainDataIterator(_loader(InfiniteSampler)[0], epoch=0, batches=5)
    assert _batches(resumed, 4) == expected[5:]


def test_random_state_is_restored_before_each_fetch():
    """What runs between two iterations (validation, another hook) draws from its own stream."""
    iterator = TrainDataIterator(_loader()[0])
    next(iterator)
    iterator.rng_state = capture_rng_state()
    expected = _draws()
    _draws()  # e.g. a validation run
    next(iterator)
    assert _draws() == expected
