"""Real-time latency of FastSAM2 per task and input size, optionally against SAM2.1 in the same run.

Tasks (batch 1, a synthetic video of uint8 RGB frames at each ``--sizes`` entry):

- ``interactive_new_frame``: ``set_image(frame)`` + ``predict`` of one click, a new frame per call;
- ``reprompt``: ``predict`` of one new click on the frame set before timing;
- ``vos_1obj`` / ``vos_8obj``: per-frame ``propagate_in_video`` cost with 1 / 8 objects given as
  first-frame masks; the prompt frame and ``--vos-warmup`` frames are not timed (steady state);
- ``panoptic``: the model's panoptic path on a new frame (FastSAM2 only; SAM2 shows '-').

``--include`` chooses what a latency covers besides the model (decode of the frame's JPEG bytes,
preprocessing, masks back at input resolution); see ``seg/utils/realtime_benchmark.py``.
``--compare-sam2 t`` builds SAM2.1-T (random weights, the ``sam2`` package) and interleaves its
calls with FastSAM2's; ``x faster`` = SAM2 mean latency / FastSAM2 mean latency. Writes a rich
table, a JSON log (``--out-json``) and an FPS-vs-resolution PNG beside it. Random weights unless
``--checkpoint``: speed does not depend on the weights. Nothing here is asserted by tests.

    python tools/benchmark/benchmark_realtime.py --compare-sam2 t --threads 2 \\
        --out-json docs/benchmarks/cpu_1080p.json
"""
import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault('TQDM_DISABLE', '1')  # SAM2's propagate_in_video draws a progress bar

import torch  # noqa: E402

from seg.apis.image_predictor import DEFAULT_IMAGE_SIZE  # noqa: E402
from seg.utils.precision import PRECISIONS, check_precision  # noqa: E402
from seg.utils.profiling import prepare_benchmark  # noqa: E402
from seg.utils.realtime_benchmark import (  # noqa: E402
    DEFAULT_SIZES,
    SAM2_CONFIGS,
    STAGES,
    TASKS,
    BenchSettings,
    build_fastsam2_side,
    build_sam2_side,
    compile_encoders,
    environment,
    parse_sizes,
    print_table,
    run_benchmark,
    write_outputs,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default='configs/fastsam2/model_fastsam2_r50.py')
    parser.add_argument('--checkpoint', default=None, help='local checkpoint (default: random init)')
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--sizes', default=','.join(f'{w}x{h}' for w, h in DEFAULT_SIZES),
                        help='input sizes WxH,WxH,...')
    parser.add_argument('--tasks', default=','.join(TASKS), help=f'comma list of {",".join(TASKS)}')
    parser.add_argument('--include', default='preprocess,postprocess',
                        help=f'stages timed besides the model, comma list of {",".join(STAGES)} '
                             '("" for the model alone)')
    parser.add_argument('--precision', default='fp32', choices=tuple(PRECISIONS),
                        help='fp32, or autocast to fp16 / bf16 (seg.utils.precision)')
    parser.add_argument('--compile', action='store_true', help='torch.compile the image encoders')
    parser.add_argument('--cuda-graphs', action='store_true',
                        help='CUDA graphs for the image encoders (compile mode reduce-overhead)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed calls per image task and size')
    parser.add_argument('--iters', type=int, default=10, help='timed calls (VOS: timed frames)')
    parser.add_argument('--vos-warmup', type=int, default=7,
                        help='untimed VOS frames after the prompt frame (SAM2.1 keeps 7 frames in '
                             'memory: its per-frame cost grows until then)')
    parser.add_argument('--frames', type=int, default=None,
                        help='VOS video length (default: 1 + --vos-warmup + --iters); the frames '
                             'after the warm-up are timed. A long stream (e.g. 10000) repeats its '
                             'first 200 frames; the JSON gives the memory held after each frame '
                             '(held_first_mb / held_max_mb / held_growth_mb)')
    parser.add_argument('--image-size', type=int, default=DEFAULT_IMAGE_SIZE,
                        help='FastSAM2 processing size (longest side)')
    parser.add_argument('--compare-sam2', choices=tuple(SAM2_CONFIGS), default=None,
                        help='also time SAM2.1 of this size, interleaved')
    parser.add_argument('--sam2-image-size', type=int, default=1024,
                        help='SAM2 input size (1024 as released; smaller only for quick CPU runs)')
    parser.add_argument('--seed', type=int, default=0,
                        help='torch seed of the random weights (the masks of random weights, and so '
                             'the mask upsampling cost, depend on them)')
    parser.add_argument('--out-json', type=Path, default=None,
                        help='JSON log (default docs/benchmarks/realtime_<device>.json); the PNG '
                             'goes beside it')
    args = parser.parse_args()
    try:
        args.sizes = parse_sizes(args.sizes)
    except ValueError as e:
        parser.error(str(e))
    args.tasks = [t for t in args.tasks.split(',') if t]
    args.include = tuple(s for s in args.include.split(',') if s)
    for name, values, allowed in (('--tasks', args.tasks, TASKS), ('--include', args.include, STAGES)):
        bad = sorted(set(values) - set(allowed))
        if bad:
            parser.error(f'{name}: unknown {bad}; choose from {",".join(allowed)}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    try:
        check_precision(args.precision, args.device)
    except ValueError as err:
        parser.error(f'--precision: {err}')
    if args.iters < 1 or args.warmup < 0 or args.vos_warmup < 0:
        parser.error('need --iters >= 1, --warmup >= 0 and --vos-warmup >= 0')
    if args.frames is not None:
        if args.frames < args.vos_warmup + 2:
            parser.error(f'--frames {args.frames}: need at least 1 prompt + --vos-warmup '
                         f'{args.vos_warmup} + 1 timed frame')
    if args.out_json is None:
        args.out_json = REPO / 'docs' / 'benchmarks' / f'realtime_{args.device}.json'
    return args


def main() -> None:
    args = parse_args()
    # real kernels, not the FLOP-countable ones the FLOP benchmarks switch to
    prepare_benchmark(args.threads, flop_countable_attention=False)
    settings = BenchSettings(device=args.device, precision=args.precision, include=args.include,
                             warmup=args.warmup, iters=args.iters, vos_warmup=args.vos_warmup,
                             vos_frames=args.frames, compile=args.compile,
                             cuda_graphs=args.cuda_graphs)
    torch.manual_seed(args.seed)
    sides = [build_fastsam2_side(str(REPO / args.config) if not Path(args.config).is_absolute()
                                 else args.config, args.checkpoint, args.device, args.image_size)]
    if args.compare_sam2:
        sides.append(build_sam2_side(args.compare_sam2, args.device, args.sam2_image_size))
    notes = compile_encoders(sides, settings)
    for note in notes:
        print(f'note: {note}')
    result = run_benchmark(sides, args.tasks, args.sizes, settings)
    env = environment(args.device)
    where = env.get('gpu') or f"CPU ({env['cpu']}, {env['torch_threads']} threads)"
    weights = 'random init' if args.checkpoint is None else Path(args.checkpoint).name
    title = f"{' vs '.join(s.name for s in sides)} on {where}, {args.precision}, batch 1, {weights}"
    print_table(result, title)
    meta = dict(title=title, environment=env, notes=notes,
                settings=dict(vars(settings), sizes=[f'{w}x{h}' for w, h in args.sizes],
                              tasks=args.tasks, config=args.config, checkpoint=args.checkpoint,
                              image_size=args.image_size, compare_sam2=args.compare_sam2,
                              seed=args.seed,
                              sam2_image_size=args.sam2_image_size),
                ratio='SAM2 latency / FastSAM2 latency (> 1: FastSAM2 faster)')
    png = write_outputs(result, meta, args.out_json, title)
    print(f'wrote {args.out_json} and {png}')


if __name__ == '__main__':
    main()
