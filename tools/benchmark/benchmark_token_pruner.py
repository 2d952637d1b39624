"""Print FLOPs and CPU latency of a transformer block behind a ``TokenPruner`` versus ``keep_ratio``.

The block (``nn.TransformerEncoderLayer``: self-attention + MLP) stands for the expensive per-token
work the pruner saves; the tokens are those of one feature level of a 1024x576 image (stride 16 by
default). Each row: tokens processed, GFLOPs (scoring and block, counted by torch's
``FlopCounterMode``), median CPU latency for an image (scores computed) and for a video frame that
reuses the cached scores. Numbers are printed, never asserted.

    python tools/benchmark/benchmark_token_pruner.py --score entropy --ratios 1 0.5 0.25
"""
import argparse

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from seg.models.backbones.modules import TokenPruner
from seg.utils.profiling import gflops, median_ms, prepare_benchmark


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--height', type=int, default=576)
    parser.add_argument('--width', type=int, default=1024)
    parser.add_argument('--stride', type=int, default=16, help='stride of the pruned feature level')
    parser.add_argument('--dim', type=int, default=256, help='token channels')
    parser.add_argument('--heads', type=int, default=8)
    parser.add_argument('--score', choices=['entropy', 'saliency'], default='entropy')
    parser.add_argument('--num-score-keys', type=int, default=None,
                        help='entropy scorer: attend to at most this many keys (default: all)')
    parser.add_argument('--ratios', type=float, nargs='+', default=[1.0, 0.75, 0.5, 0.25, 0.1])
    parser.add_argument('--repeats', type=int, default=10, help='timed runs per row (median)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    args = parser.parse_args()
    for name in ('height', 'width', 'stride', 'dim', 'heads', 'repeats'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1, got {getattr(args, name)}')
    if args.height % args.stride or args.width % args.stride:
        parser.error(f'--height/--width ({args.height}x{args.width}) must be multiples of --stride '
                     f'{args.stride}')
    bad = [r for r in args.ratios if not 0 < r <= 1]
    if bad:
        parser.error(f'--ratios must lie in (0, 1], got {bad}')
    return args


@torch.no_grad()
def main() -> None:
    args = parse_args()
    prepare_benchmark(args.threads)
    n = (args.height // args.stride) * (args.width // args.stride)
    tokens = torch.randn(1, n, args.dim)
    block = nn.TransformerEncoderLayer(args.dim, args.heads, 4 * args.dim, dropout=0.0,
                                       batch_first=True).eval()

    table = Table(title=f'TokenPruner ({args.score}) + TransformerEncoderLayer(d={args.dim}) on '
                        f'{n} tokens ({args.width}x{args.height} / {args.stride}), CPU '
                        f'{torch.get_num_threads()} threads')
    for col in ('keep_ratio', 'tokens', 'GFLOPs score', 'GFLOPs block', 'GFLOPs total',
                'ms image', 'ms video (cached)', 'speed-up image'):
        table.add_column(col, justify='right')
    base_ms = median_ms(lambda: block(tokens), args.repeats)
    base_flops = gflops(lambda: block(tokens))
    table.add_row('no pruner', str(n), '0', f'{base_flops:.2f}', f'{base_flops:.2f}',
                  f'{base_ms:.1f}', '-', '1.00x')
    for ratio in args.ratios:
        pruner = TokenPruner(ratio, args.dim, score=args.score,
                             num_score_keys=args.num_score_keys).eval()
        k = pruner.num_kept(n)
        score_flops = gflops(lambda: pruner.compute_scores(tokens))
        total_flops = gflops(lambda: pruner(tokens, block))
        image_ms = median_ms(lambda: pruner(tokens, block), args.repeats)
        pruner.refresh_period = args.repeats + 2  # warm-up + timed runs all reuse the first scores
        pruner.reset()
        pruner(tokens, block, video=True)
        video_ms = median_ms(lambda: pruner(tokens, block, video=True), args.repeats)
        table.add_row(f'{ratio:g}', str(k), f'{score_flops:.2f}', f'{total_flops - score_flops:.2f}',
                      f'{total_flops:.2f}', f'{image_ms:.1f}', f'{video_ms:.1f}',
                      f'{base_ms / image_ms:.2f}x')
    Console(width=160).print(table)


if __name__ == '__main__':
    main()
