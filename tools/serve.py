"""Run the interactive segmentation server (REST + WebSocket + browser UI at /ui/).

    python tools/serve.py --config configs/fastsam2/model_fastsam2_tiny.py --weights W \
        --host 127.0.0.1 --port 8000 [--device cuda] [--allow-dir data/]

Without ``--weights`` the model has random weights (masks are meaningless; for trying the
server). See docs/serving.md for the API.
"""
import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', required=True,
                   help='model config (e.g. configs/fastsam2/model_fastsam2_tiny.py)')
    p.add_argument('--weights', default=None, help='LOCAL checkpoint; omitted: random weights')
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=8000, help='0: any free port (printed)')
    p.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1, ...')
    # the default is resolved after parsing: importing seg (seconds) would slow down --help
    p.add_argument('--image-size', type=int, default=None,
                   help="longer side the model processes (default: the predictors' "
                        'DEFAULT_IMAGE_SIZE, 512)')
    p.add_argument('--batch-window-ms', type=float, default=5.0,
                   help='micro-batching window (0: off)')
    p.add_argument('--max-batch', type=int, default=32)
    p.add_argument('--max-sessions', type=int, default=16)
    p.add_argument('--session-ttl', type=float, default=900.0, help='seconds idle before expiry')
    p.add_argument('--max-upload-mb', type=float, default=64.0)
    p.add_argument('--max-frames', type=int, default=500)
    p.add_argument('--max-side', type=int, default=2048, help='resolution cap (longer side, px)')
    p.add_argument('--allow-dir', action='append', default=[],
                   help='a folder whose media POST /sessions/path may open (repeatable)')
    p.add_argument('--seed', type=int, default=None, help='seed of the random init (no --weights)')
    p.add_argument('--threads', type=int, default=None, help='torch intra-op threads')
    p.add_argument('--log-level', default='info')
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch
    import uvicorn

    from seg.apis.image_predictor import DEFAULT_IMAGE_SIZE
    from seg.serving import Limits, ModelEngine, ServerSettings, create_app

    for d in args.allow_dir:
        if not Path(d).is_dir():
            sys.exit(f'--allow-dir {d}: not a folder')
    if args.seed is not None:
        torch.manual_seed(args.seed)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=args.log_level.upper())
    image_size = DEFAULT_IMAGE_SIZE if args.image_size is None else args.image_size
    engine = ModelEngine.from_config(args.config, args.weights, args.device, image_size,
                                     args.batch_window_ms, args.max_batch)
    settings = ServerSettings(
        limits=Limits(max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
                      max_frames=args.max_frames, max_side=args.max_side),
        max_sessions=args.max_sessions, session_ttl_s=args.session_ttl,
        allowed_dirs=[Path(d) for d in args.allow_dir])
    app = create_app(engine, settings)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            ws_max_size=settings.limits.max_upload_bytes)
    server = uvicorn.Server(config)
    # the bound port (with --port 0) for scripts that start the server
    original_startup = server.startup

    async def startup(sockets=None):
        await original_startup(sockets)
        for s in server.servers:
            for sock in s.sockets:
                print(f'FASTSAM2_SERVING_URL http://{args.host}:{sock.getsockname()[1]}', flush=True)

    server.startup = startup
    server.run()


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    main()
