"""Export FastSAM2 / RapSAM to ONNX: the image encoder, the prompt decoder and the video
tracker's prompted-frame / tracked-frame graphs (see ``seg/deployment/onnx_export.py``,
``seg/deployment/onnx_tracker.py`` and ``docs/deployment.md``).

    python tools/deployment/export_onnx.py --config configs/fastsam2/model_fastsam2_tiny.py \
        --out-dir work_dirs/onnx --image-size 1024 576 --check
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

from seg.apis.image_predictor import build_model
from seg.deployment.onnx_export import MIN_OPSET, PARTS, check_parity, check_parts, export_onnx
from seg.deployment.onnx_tracker import check_video_parity


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', required=True, help='model config file')
    parser.add_argument('--checkpoint', default=None,
                        help='local checkpoint (default: random weights, with a warning)')
    parser.add_argument('--out-dir', required=True,
                        help='folder for encoder.onnx, decoder.onnx, video_prompt.onnx, '
                             'video_step.onnx and video.json')
    parser.add_argument('--image-size', type=int, nargs='+', default=[1024],
                        help='padded input size: S (square) or W H, multiples of 32 (default 1024)')
    parser.add_argument('--opset', type=int, default=MIN_OPSET,
                        help=f'ONNX opset (>= {MIN_OPSET}, default {MIN_OPSET})')
    parser.add_argument('--parts', default=','.join(PARTS),
                        help=f'comma-separated subset of {",".join(PARTS)} (default all)')
    parser.add_argument('--check', action='store_true',
                        help='compare each graph with PyTorch through onnxruntime on random inputs; '
                             'with the encoder and video graphs in --out-dir also the reference '
                             'host loop with RapSAM.track_step on a 4-frame synthetic video')
    parser.add_argument('--tolerance', type=float, default=1e-3,
                        help='max abs difference --check accepts (default 1e-3)')
    parser.add_argument('--min-iou', type=float, default=0.99,
                        help='min mask IoU of the host loop vs track_step --check accepts '
                             '(default 0.99)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys (key=value, mmdet-style)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if len(args.image_size) not in (1, 2):
        raise SystemExit(f'--image-size takes S or W H, got {args.image_size}')
    w, h = args.image_size * 2 if len(args.image_size) == 1 else args.image_size
    parts = [p.strip() for p in args.parts.split(',') if p.strip()]
    try:
        check_parts(parts)  # before the (slow) model build
        # the exported graph starts at the padded, normalised input: no resize in the model
        model = build_model(args.config, args.checkpoint, device='cpu', image_size=None,
                            cfg_options=args.cfg_options)
        export_onnx(model, args.out_dir, (h, w), parts, args.opset)
    except ValueError as err:
        print(f'{err}', file=sys.stderr)
        return 1
    if not args.check:
        return 0
    diffs = check_parity(model, args.out_dir, (h, w), parts)
    for name, diff in diffs.items():
        print(f'parity {name}: max abs diff {diff:.3g}')
    bad = {k: v for k, v in diffs.items() if not v <= args.tolerance}
    if 'video' in parts and osp.isfile(osp.join(args.out_dir, 'encoder.onnx')):
        loop = check_video_parity(model, args.out_dir)
        print(f"parity video host loop vs track_step: max abs diff "
              f"{loop['video_loop_max_abs_diff']:.3g}, min mask IoU {loop['video_loop_min_iou']:.4f}")
        if not loop['video_loop_max_abs_diff'] <= args.tolerance:
            bad['video_loop_max_abs_diff'] = loop['video_loop_max_abs_diff']
        if not loop['video_loop_min_iou'] >= args.min_iou:
            bad['video_loop_min_iou'] = loop['video_loop_min_iou']
    if bad:
        print(f'parity FAILED (tolerance {args.tolerance}): {bad}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
