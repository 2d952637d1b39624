"""Micro-batching of model calls on one worker thread, off the event loop.

Every model call of the server is a ``Job`` submitted to the ``MicroBatcher``; its single worker
thread owns the model (torch modules are not re-entrant, and one thread keeps the device busy
without contention). After taking a job the worker waits up to ``window_ms`` for more, then
groups what it holds by ``(kind, key)``: each group of a batchable kind (a handler registered
with ``batched=True``) is ONE call of its handler, so N sessions clicking at once cost one
forward, not N. Jobs of other kinds run one by one, in arrival order.

A failing batch is retried job by job, so one bad request fails alone and the others get their
results; an exception never stops the worker. ``window_ms=0`` turns batching off (every job is
its own call): the load test compares both.
"""
import asyncio
import concurrent.futures
import queue
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence

BatchHandler = Callable[[Sequence[Any]], Sequence[Any]]


@dataclass
class Job:
    """One model call: its handler ``kind``, a grouping ``key`` (jobs batch together only when
    both agree, e.g. the same input size) and the handler's ``payload``."""
    kind: str
    key: Hashable
    payload: Any
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)


@dataclass
class _Handler:
    fn: BatchHandler
    batched: bool


class MicroBatcher:
    """Collects jobs for ``window_ms`` after the first one and runs each group as one call.

    Args:
        window_ms: how long the worker waits for more jobs after the first (0: no batching).
        max_batch: the most jobs one call takes.
    """

    def __init__(self, window_ms: float = 5.0, max_batch: int = 32) -> None:
        if window_ms < 0:
            raise ValueError(f'MicroBatcher: window_ms must be >= 0, got {window_ms}')
        if max_batch < 1:
            raise ValueError(f'MicroBatcher: max_batch must be >= 1, got {max_batch}')
        self.window_s = window_ms / 1e3
        self.max_batch = max_batch
        self._handlers: Dict[str, _Handler] = {}
        self._queue: 'queue.Queue[Optional[Job]]' = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        # calls per kind, and jobs per kind: jobs / calls is the mean batch size
        self.calls: Counter = Counter()
        self.jobs: Counter = Counter()
        self.max_seen_batch = 0

    def register(self, kind: str, fn: BatchHandler, batched: bool) -> None:
        """``fn(payloads) -> results`` (one result per payload, in order). ``batched=False``:
        ``fn`` always gets one payload."""
        self._handlers[kind] = _Handler(fn, batched)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name='fastsam2-model', daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued jobs, then end the worker."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ submission
    def submit(self, kind: str, payload: Any, key: Hashable = None) -> concurrent.futures.Future:
        """Queue a job; the future gets its result (or its exception)."""
        if kind not in self._handlers:
            raise KeyError(f'MicroBatcher: no handler for kind {kind!r}; known: {sorted(self._handlers)}')
        if not self.running:
            raise RuntimeError('MicroBatcher: the worker is not running (call start())')
        job = Job(kind, key, payload)
        self._queue.put(job)
        return job.future

    async def run(self, kind: str, payload: Any, key: Hashable = None) -> Any:
        """``submit`` for coroutines: awaits the result without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(kind, payload, key))

    def stats(self) -> Dict[str, Any]:
        calls, jobs = dict(self.calls), dict(self.jobs)
        return dict(window_ms=self.window_s * 1e3, max_batch=self.max_batch, calls=calls, jobs=jobs,
                     max_batch_seen=self.max_seen_batch, queued=self._queue.qsize())

    # ------------------------------------------------------------------ worker
    def _collect(self, first: Job) -> List[Job]:
        jobs = [first]
        if self.window_s > 0:
            deadline = time.perf_counter() + self.window_s
            while len(jobs) < self.max_batch:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    job = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                if job is None:  # stop: run what we hold, then end
                    self._queue.put(None)
                    break
                jobs.append(job)
        return jobs

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            groups: 'OrderedDict[tuple, List[Job]]' = OrderedDict()
            for job in self._collect(first):
                if job.future.set_running_or_notify_cancel():
                    groups.setdefault((job.kind, job.key), []).append(job)
            for (kind, _), jobs in groups.items():
                handler = self._handlers[kind]
                if handler.batched and len(jobs) > 1:
                    self._call(kind, handler, jobs, fallback=True)
                else:
                    for job in jobs:
                        self._call(kind, handler, [job], fallback=False)

    def _call(self, kind: str, handler: _Handler, jobs: List[Job], fallback: bool) -> None:
        self.calls[kind] += 1
        self.jobs[kind] += len(jobs)
        self.max_seen_batch = max(self.max_seen_batch, len(jobs))
        try:
            results = handler.fn([j.payload for j in jobs])
            if len(results) != len(jobs):
                raise RuntimeError(f'MicroBatcher: the {kind!r} handler returned {len(results)} '
                                   f'results for {len(jobs)} jobs')
        except Exception as e:  # noqa: BLE001  (reported to the requests, never kills the worker)
            if fallback:  # find the job that failed: the others still get their results
                for job in jobs:
                    self._call(kind, handler, [job], fallback=False)
            else:
                jobs[0].future.set_exception(e)
            return
        for job, result in zip(jobs, results):
            job.future.set_result(result)


__all__ = ['MicroBatcher', 'Job']
