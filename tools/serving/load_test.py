"""Load test of the serving API on loopback: N concurrent clients, each uploading a short clip
(zip of JPEG frames), clicking its object a few times, propagating the clip, reading the masks
and deleting its session. Reports per-request p50 / p99 latency, throughput and failures, with
micro-batching on and off, and checks that no request failed and no session leaked.

    python tools/serving/load_test.py --clients 20 --frames 4 --clicks 3 [--windows 0 5]
    python tools/serving/load_test.py --url http://127.0.0.1:8000 ...   # a running server

Without --url the servers run in this process (uvicorn on free loopback ports; one model, one
engine per batching window) with the tiny model unless --config / --weights say otherwise.
"""
import argparse
import asyncio
import io
import sys
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import cv2
import httpx
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
BEAR = REPO_ROOT.parent / 'shared/data/davis2017_sample/JPEGImages/480p/bear'
TINY = str(REPO_ROOT / 'configs/fastsam2/model_fastsam2_tiny.py')


def make_clip(frames: int, side: int, folder: Path = BEAR) -> bytes:
    """A zip of ``frames`` JPEGs: the folder's frames resized to ``side`` px (longer side),
    cycled and shifted a few pixels per lap so no two frames are the same."""
    files = sorted(folder.glob('*.jpg'))
    if not files:
        raise FileNotFoundError(f'no JPEG frames in {folder}')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        for t in range(frames):
            bgr = cv2.imread(str(files[t % len(files)]))
            scale = side / max(bgr.shape[:2])
            bgr = cv2.resize(bgr, (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
            bgr = np.roll(bgr, 3 * (t // len(files)), axis=1)
            z.writestr(f'{t:05d}.jpg', cv2.imencode('.jpg', bgr)[1].tobytes())
    return buf.getvalue()


async def _client(idx: int, client: httpx.AsyncClient, clip: bytes, clicks: int,
                  times: Dict[str, List[float]], failures: List[str], start: asyncio.Event) -> int:
    """One user's session; returns the frames it tracked."""
    async def timed(kind: str, request) -> Optional[httpx.Response]:
        t0 = time.perf_counter()
        try:
            r = await request
        except httpx.HTTPError as e:
            failures.append(f'client {idx} {kind}: {type(e).__name__}: {e}')
            return None
        times[kind].append((time.perf_counter() - t0) * 1e3)
        if r.status_code >= 400:
            failures.append(f'client {idx} {kind}: {r.status_code} {r.text[:200]}')
            return None
        return r

    await start.wait()
    upload = {'file': (f'clip{idx}.zip', clip, 'application/zip')}
    r = await timed('create', client.post('/sessions', files=upload))
    if r is None:
        return 0
    info = r.json()
    sid, w, h = info['session_id'], info['width'], info['height']
    rng = np.random.default_rng(idx)
    try:
        for k in range(clicks):
            x, y = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
            await timed('prompt', client.post(f'/sessions/{sid}/prompts', json=dict(
                frame=0, obj_id=1, points=[[x, y]], labels=[int(k == 0 or rng.random() > 0.3)])))
        r = await timed('propagate', client.post(f'/sessions/{sid}/propagate', json=dict(wait=True)))
        tracked = r.json()['done'] if r is not None else 0
        await timed('masks', client.get(f'/sessions/{sid}/masks', params=dict(frame=info['num_frames'] - 1)))
    finally:
        await timed('delete', client.delete(f'/sessions/{sid}'))
    return tracked


async def run_load(url: str, clients: int, frames: int, clicks: int, side: int,
                   timeout: float = 300.0) -> Dict[str, Any]:
    """The load against a running server at ``url``; returns latencies, throughput, failures and
    the sessions left on the server afterwards (``leaked_sessions``, must be 0)."""
    from seg.utils.realtime_benchmark import latency_stats
    clip = make_clip(frames, side)
    times: Dict[str, List[float]] = defaultdict(list)
    failures: List[str] = []
    start = asyncio.Event()
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        before = (await client.get('/health')).json()['sessions']['live']
        tasks = [asyncio.create_task(_client(i, client, clip, clicks, times, failures, start))
                 for i in range(clients)]
        t0 = time.perf_counter()
        start.set()
        tracked = await asyncio.wait_for(asyncio.gather(*tasks), timeout)
        wall = time.perf_counter() - t0
        health = (await client.get('/health')).json()
    requests = sum(len(v) for v in times.values())
    every = [t for v in times.values() for t in v]
    return dict(
        clients=clients, frames=frames, clicks=clicks, side=side, wall_s=wall,
        requests=requests, failed=len(failures), failures=failures[:20],
        throughput_rps=requests / wall, tracked_fps=sum(tracked) / wall,
        latency_ms={k: {s: round(v, 2) for s, v in latency_stats(t).items() if s != 'fps'}
                    for k, t in sorted(times.items())},
        all_latency_ms=({s: round(v, 2) for s, v in latency_stats(every).items() if s != 'fps'}
                        if every else {}),
        leaked_sessions=health['sessions']['live'] - before, batcher=health['batcher'])


def run_in_process(windows: Sequence[float], clients: int, frames: int, clicks: int, side: int,
                   config: str = TINY, weights: Optional[str] = None, device: str = 'cpu',
                   image_size: int = 256) -> List[Dict[str, Any]]:
    """``run_load`` against in-process servers, one per micro-batching window (0: off), all on
    one model."""
    import torch

    from seg.serving import MicroBatcher, ModelEngine, ServerSettings, create_app
    from seg.serving.launch import ThreadedServer
    torch.manual_seed(0)
    base = ModelEngine.from_config(config, weights, device, image_size)
    results = []
    for window in windows:
        engine = ModelEngine(base.model, MicroBatcher(window, max(clients, 1)), base.info)
        app = create_app(engine, ServerSettings(max_sessions=clients))
        with ThreadedServer(app) as server:
            result = asyncio.run(run_load(server.url, clients, frames, clicks, side))
        results.append(dict(window_ms=window, **result))
    return results


def format_table(results: Sequence[Dict[str, Any]]) -> str:
    lines = ['| batching | requests | failed | leaked | wall s | req/s | tracked frames/s | '
             'prompt p50 / p99 ms | all p50 / p99 ms | decode calls / jobs |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for r in results:
        on = f'on ({r["window_ms"]:g} ms)' if r.get('window_ms') else 'off'
        p = r['latency_ms'].get('prompt', {})
        a = r['all_latency_ms']
        b = r['batcher']
        lines.append(f'| {on} | {r["requests"]} | {r["failed"]} | {r["leaked_sessions"]} | '
                     f'{r["wall_s"]:.2f} | {r["throughput_rps"]:.1f} | {r["tracked_fps"]:.1f} | '
                     f'{p.get("p50_ms", 0):.0f} / {p.get("p99_ms", 0):.0f} | '
                     f'{a.get("p50_ms", 0):.0f} / {a.get("p99_ms", 0):.0f} | '
                     f'{b["calls"].get("decode", 0)} / {b["jobs"].get("decode", 0)} |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--clients', type=int, default=20)
    p.add_argument('--frames', type=int, default=4, help='frames of each client\'s clip')
    p.add_argument('--clicks', type=int, default=3)
    p.add_argument('--side', type=int, default=256, help='longer side of the clip frames (px)')
    p.add_argument('--windows', type=float, nargs='+', default=[5.0, 0.0],
                   help='micro-batching windows (ms) to compare; 0 is off')
    p.add_argument('--url', default=None, help='load a running server instead (its own window)')
    p.add_argument('--config', default=TINY)
    p.add_argument('--weights', default=None)
    p.add_argument('--device', default='cpu')
    p.add_argument('--image-size', type=int, default=256)
    p.add_argument('--out', default=None, help='write the results as JSON here')
    args = p.parse_args(argv)
    if min(args.clients, args.frames, args.side) < 1 or args.clicks < 0:
        p.error('--clients, --frames and --side must be >= 1, --clicks >= 0')
    if args.url:
        results = [dict(window_ms=None, **asyncio.run(run_load(args.url, args.clients, args.frames,
                                                               args.clicks, args.side)))]
    else:
        results = run_in_process(args.windows, args.clients, args.frames, args.clicks, args.side,
                                 args.config, args.weights, args.device, args.image_size)
    print(format_table(results))
    if args.out:
        from seg.utils.atomic_io import atomic_write_json
        atomic_write_json(results, args.out)
    bad = [r for r in results if r['failed'] or r['leaked_sessions']]
    for r in bad:
        print(f'FAILED: {r["failed"]} failed requests, {r["leaked_sessions"]} leaked sessions: '
              f'{r["failures"][:5]}', file=sys.stderr)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
