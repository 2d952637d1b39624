"""ClipLengthCurriculumHook: the sampler's clip length follows the schedule, also after resume."""
from types import SimpleNamespace

import pytest

from seg.datasets import VOSCurriculumSampler
from seg.engine.hooks import ClipLengthCurriculumHook


def _runner(iteration: int, batch_sampler=None):
    sampler = VOSCurriculumSampler(list(range(4)), clip_length=(4, 6), batch_size=1, seed=0)
    loader = SimpleNamespace(sampler=sampler, batch_sampler=batch_sampler)
    return SimpleNamespace(iter=iteration, train_dataloader=loader), sampler


def test_the_length_follows_the_schedule():
    hook = ClipLengthCurriculumHook([(0, (4, 6)), (100, (12, 16)), (200, 20)])
    assert [hook.length_at(i) for i in (0, 99, 100, 250)] == [(4, 6), (4, 6), (12, 16), 20]
    runner, sampler = _runner(0)
    hook.before_train(runner)
    assert sampler.clip_length == (4, 6)
    runner.iter = 99  # iteration 99's batch is fetched; the next one (100) is long
    hook.before_train_iter(runner, 99)
    assert sampler.clip_length == (12, 16)
    assert {i.clip_length for i in sampler} <= set(range(12, 17))
    # resumed past the switch: long clips from the first batch
    runner, sampler = _runner(150)
    hook.before_train(runner)
    assert sampler.clip_length == (12, 16)


def test_bad_schedules_and_samplers_are_named():
    with pytest.raises(ValueError, match='must begin at 0 and increase'):
        ClipLengthCurriculumHook([(10, 4)])
    with pytest.raises(ValueError, match='must begin at 0 and increase'):
        ClipLengthCurriculumHook([(0, 4), (0, 6)])
    with pytest.raises(ValueError, match=r'clip_length at 5'):
        ClipLengthCurriculumHook([(0, 4), (5, (6, 2))])
    runner = SimpleNamespace(iter=0, train_dataloader=SimpleNamespace(sampler=object(),
                                                                       batch_sampler=None))
    with pytest.raises(TypeError, match='has no clip_length'):
        ClipLengthCurriculumHook([(0, 4)]).before_train(runner)
