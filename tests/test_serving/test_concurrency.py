"""Concurrency over real loopback sockets: the prompts of concurrent sessions are micro-batched
into fewer model forwards than requests (with the same masks as one by one), and the event loop
keeps answering while the model is busy."""
import asyncio
import threading
import time

import httpx
import numpy as np
import pycocotools.mask as mask_utils

from seg.serving import ServerSettings, create_app
from seg.serving.launch import ThreadedServer

from .conftest import jpeg

N = 6


def _count_forwards(model, monkeypatch) -> list:
    """Record the batch size of every prompt-decode forward of the model."""
    calls = []
    original = model.decode_prompts

    def counted(feats, prompts, *args, **kwargs):
        calls.append(len(prompts))
        return original(feats, prompts, *args, **kwargs)

    monkeypatch.setattr(model, 'decode_prompts', counted)
    return calls


async def _prompt_all(url: str, frames, release: threading.Event = None):
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        sids = []
        for i in range(N):
            image = jpeg(frames[i % len(frames)])
            r = await c.post('/sessions', files={'file': (f'{i}.jpg', image, 'image/jpeg')})
            sids.append(r.json()['session_id'])
        points = [[40 + 30 * i, 30 + 15 * i] for i in range(N)]
        rs = await asyncio.gather(*(
            c.post(f'/sessions/{sid}/prompts', json=dict(obj_id=1, points=[p], labels=[1]))
            for sid, p in zip(sids, points)))
        assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
        health = (await c.get('/health')).json()
    return [r.json()['objects'][0]['segmentation'] for r in rs], health


def test_concurrent_prompts_share_forwards(make_engine, frames, monkeypatch):
    batched_engine = make_engine(window_ms=50.0)
    calls = _count_forwards(batched_engine.model, monkeypatch)
    with ThreadedServer(create_app(batched_engine, ServerSettings())) as server:
        batched, health = asyncio.run(_prompt_all(server.url, frames))
    assert sum(calls) == N and len(calls) < N, calls  # N requests, fewer forwards
    assert health['batcher']['jobs']['decode'] == N and health['batcher']['calls']['decode'] == len(calls)
    calls.clear()
    with ThreadedServer(create_app(make_engine(window_ms=0.0), ServerSettings())) as server:
        single, _ = asyncio.run(_prompt_all(server.url, frames))
    assert calls == [1] * N  # batching off: one forward per request
    # and the batch changed no mask (beyond float rounding of a batched matmul on a few pixels)
    for a, b in zip(batched, single):
        ma, mb = (mask_utils.decode(dict(m, counts=m['counts'].encode())).astype(bool) for m in (a, b))
        assert (ma ^ mb).mean() < 1e-3 and ma.sum() > 0


def test_event_loop_answers_while_the_model_works(make_engine, frames):
    engine = make_engine()
    with ThreadedServer(create_app(engine, ServerSettings())) as server:
        gate = threading.Event()
        engine.batcher.submit('call', gate.wait)  # the model's worker is busy until released

        async def main():
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
                upload = asyncio.create_task(
                    c.post('/sessions', files={'file': ('x.jpg', jpeg(frames[0]), 'image/jpeg')}))
                t0 = time.perf_counter()
                health = await c.get('/health')
                latency = time.perf_counter() - t0
                queued = health.json()['batcher']['queued']
                assert not upload.done()  # its encode waits for the worker
                gate.set()
                return latency, queued, (await upload).status_code

        latency, queued, status = asyncio.run(main())
    assert latency < 2.0 and status == 201
    assert queued >= 0 and np.isfinite(latency)
