"""Memory of a long VOS stream: FastSAM2's streaming predictor (``start_stream`` / ``track``) over
thousands of frames, the memory held after every frame recorded (CUDA ``memory_allocated``, or
the process RSS on a CPU). A stream keeps only the current frame and a bounded memory bank, so
its memory must stay flat; the offline API (``init_state`` / ``propagate_in_video``, SAM2's)
keeps every frame's masks instead, as SAM2 does.

    python tools/benchmark/stream_memory.py --config configs/fastsam2/model_fastsam2_tiny.py \\
        --frames 10000 --size 320x240 --image-size 256 --out-json docs/benchmarks/stream.json

Writes the JSON (growth, trace, latency) and ``<stem>.png`` (memory held per frame). Numbers are
printed, never asserted.
"""
import argparse
import sys
import time
from pathlib import Path

import torch
from rich.progress import track

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from seg.apis.image_predictor import DEFAULT_IMAGE_SIZE  # noqa: E402
from seg.utils.atomic_io import atomic_write_json  # noqa: E402
from seg.utils.realtime_benchmark import (  # noqa: E402
    FrameSource,
    build_fastsam2_side,
    environment,
    held_memory_mb,
    held_memory_stats,
    latency_stats,
    parse_sizes,
    plot_held_memory,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default='configs/fastsam2/model_fastsam2_tiny.py')
    parser.add_argument('--checkpoint', default=None, help='local checkpoint (default: random init)')
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--frames', type=int, default=10_000, help='stream length')
    parser.add_argument('--objects', type=int, default=1, help='objects prompted on frame 0 (1..8)')
    parser.add_argument('--size', default='320x240', help='frame size WxH')
    parser.add_argument('--image-size', type=int, default=DEFAULT_IMAGE_SIZE,
                        help='processing size (longest side)')
    parser.add_argument('--warmup', type=int, default=50,
                        help='frames before the first recorded one (the memory bank fills)')
    parser.add_argument('--seed', type=int, default=0, help='torch seed of the random weights')
    parser.add_argument('--out-json', type=Path, default=REPO / 'docs/benchmarks/stream_memory.json')
    args = parser.parse_args()
    try:
        (args.width, args.height), = parse_sizes(args.size)
    except ValueError as e:
        parser.error(str(e))
    if not 1 <= args.objects <= 8:
        parser.error(f'--objects must be in 1..8, got {args.objects}')
    if args.warmup < 0 or args.frames < args.warmup + 2:
        parser.error(f'--frames ({args.frames}) must exceed --warmup ({args.warmup}) by 2 or more')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    return args


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = str(REPO / args.config) if not Path(args.config).is_absolute() else args.config
    predictor = build_fastsam2_side(config, args.checkpoint, args.device,
                                    args.image_size).video_predictor
    source = FrameSource(args.width, args.height, args.frames, decode=False)
    state = predictor.start_stream()
    held, times_ms = [], []
    with torch.inference_mode():
        predictor.track(state, source.get(0))
        for obj_id, mask in enumerate(source.object_masks(args.objects), start=1):
            predictor.add_new_mask(state, frame_idx=0, obj_id=obj_id, mask=mask)
        for t in track(range(1, args.frames), description='stream frames'):
            start = time.perf_counter()
            predictor.track(state, source.get(t))
            if args.device == 'cuda':
                torch.cuda.synchronize()
            if t > args.warmup:
                times_ms.append((time.perf_counter() - start) * 1e3)
                held.append(held_memory_mb(args.device))
    stats = held_memory_stats(held, args.device)
    row = dict(task=f'stream_{args.objects}obj', size=f'{args.width}x{args.height}',
               model=f'FastSAM2 ({Path(args.config).stem})', **latency_stats(times_ms), **stats)
    title = (f"FastSAM2 stream ({Path(args.config).stem}), {args.frames} frames "
             f"{args.width}x{args.height}, {args.objects} object(s), {args.device}")
    png = args.out_json.with_suffix('.png')
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(dict(title=title, environment=environment(args.device),
                           settings={k: str(v) if isinstance(v, Path) else v
                                     for k, v in vars(args).items()},
                           rows=[row], plot=png.name), args.out_json)
    plot_held_memory(dict(rows=[row]), png, title)
    print(f"{title}: memory held {stats['held_first_mb']:.1f} MB after frame {args.warmup + 1}, "
          f"{stats['held_last_mb']:.1f} MB after the last, max {stats['held_max_mb']:.1f} MB "
          f"(growth {stats['held_growth_mb']:.1f} MB; {stats['held_kind']}); "
          f"{row['mean_ms']:.1f} ms / frame")
    print(f'wrote {args.out_json} and {png}')


if __name__ == '__main__':
    main()
