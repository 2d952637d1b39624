"""MicroBatcher: concurrent jobs of a batchable kind share one call, keys keep incompatible jobs
apart, a failing job fails alone, window 0 turns batching off, and awaiting a job never blocks
the event loop."""
import asyncio
import threading
import time

import pytest

from seg.serving import MicroBatcher


def _started(window_ms: float, calls: list, fail_on=None, delay: float = 0.0) -> MicroBatcher:
    b = MicroBatcher(window_ms=window_ms, max_batch=8)

    def double(payloads):
        calls.append(list(payloads))
        time.sleep(delay)
        if fail_on is not None and fail_on in payloads:
            raise ValueError(f'bad payload {fail_on}')
        return [2 * p for p in payloads]

    b.register('double', double, batched=True)
    b.register('single', lambda ps: [ps[0] + 1], batched=False)
    b.start()
    return b


async def _gather(b: MicroBatcher, kind: str, payloads, keys=None):
    keys = keys or [None] * len(payloads)
    return await asyncio.gather(*(b.run(kind, p, k) for p, k in zip(payloads, keys)),
                                return_exceptions=True)


def test_concurrent_jobs_share_one_call():
    calls = []
    b = _started(50.0, calls)
    try:
        assert asyncio.run(_gather(b, 'double', list(range(6)))) == [0, 2, 4, 6, 8, 10]
    finally:
        b.stop()
    assert len(calls) < 6 and sorted(p for c in calls for p in c) == list(range(6))
    assert b.stats()['jobs']['double'] == 6 and b.stats()['calls']['double'] == len(calls)


def test_keys_and_max_batch_split_groups():
    calls = []
    b = _started(50.0, calls)
    try:
        out = asyncio.run(_gather(b, 'double', list(range(12)), keys=[i % 2 for i in range(12)]))
    finally:
        b.stop()
    assert out == [2 * i for i in range(12)]
    for c in calls:  # one key per call, at most max_batch jobs
        assert len({p % 2 for p in c}) == 1 and len(c) <= 8


def test_a_failing_job_fails_alone():
    calls = []
    b = _started(50.0, calls, fail_on=3)
    try:
        out = asyncio.run(_gather(b, 'double', [1, 2, 3, 4]))
        assert b.running  # the worker survived the exception
        assert asyncio.run(_gather(b, 'double', [5])) == [10]
    finally:
        b.stop()
    assert out[:2] == [2, 4] and out[3] == 8
    assert isinstance(out[2], ValueError) and 'bad payload 3' in str(out[2])


def test_window_zero_and_unbatched_kinds_run_singly():
    calls = []
    b = _started(0.0, calls)
    try:
        assert asyncio.run(_gather(b, 'double', [1, 2, 3])) == [2, 4, 6]
        assert asyncio.run(_gather(b, 'single', [1, 2])) == [2, 3]
    finally:
        b.stop()
    assert all(len(c) == 1 for c in calls)
    assert b.stats()['calls'] == {'double': 3, 'single': 2}


def test_jobs_run_off_the_event_loop():
    calls = []
    b = _started(0.0, calls, delay=0.3)
    ticks = []

    async def main():
        async def ticker():
            while True:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)
        t = asyncio.create_task(ticker())
        result = await b.run('double', 5)
        t.cancel()
        return result

    try:
        assert asyncio.run(main()) == 10
    finally:
        b.stop()
    assert calls and threading.main_thread().is_alive()
    assert len(ticks) > 10  # the loop kept ticking during the 0.3 s model call


def test_bad_settings_and_unknown_kind():
    with pytest.raises(ValueError, match='window_ms'):
        MicroBatcher(window_ms=-1)
    with pytest.raises(ValueError, match='max_batch'):
        MicroBatcher(max_batch=0)
    b = MicroBatcher()
    with pytest.raises(KeyError, match='no handler'):
        b.submit('nope', 1)
    b.register('x', lambda ps: ps, batched=True)
    with pytest.raises(RuntimeError, match='not running'):
        b.submit('x', 1)
