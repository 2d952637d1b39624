"""Print parameters, FLOPs and CPU latency of the RapSAM baseline vs FastSAM2, per task mode.

Both models are built from their configs (random init: cost, not quality) and run their full
inference path (data preprocessor included) on one ``--width`` x ``--height`` frame:

- panoptic: ``test_step`` on an image without prompts;
- interactive: ``test_step`` on an image with one positive click;
- vos / frame: FastSAM2 streams (``new_tracker``, ``preprocess_frame`` + ``track_step`` with a
  mask prompt on the first frame, then unprompted frames are measured); the baseline has no
  streaming path, it decodes a ``--clip-frames`` clip jointly (mask prompt on frame 0) and its
  cost is divided by the frames.

FLOPs are counted by torch's ``FlopCounterMode`` (matmuls, convolutions; torchvision's deformable
convolution of the neck is not counted, for either model). FastSAM2's VOS FLOPs are averaged over
one token-pruner refresh period (frames that rescore and frames that reuse the cached scores).
Latency is the median of ``--repeats`` runs after ``--warmup`` runs. Nothing is asserted.

    python tools/benchmark/benchmark_modes.py --threads 1 [--size r50]
"""
import argparse
import copy
from pathlib import Path
from typing import Callable, Tuple

import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.config import Config
from rich.console import Console
from rich.table import Table

import seg  # noqa: F401  (registration)
from seg.models import VideoSegDataPreprocessor
from seg.registry import MODELS
from seg.structures import build_prompts
from seg.utils.profiling import gflops, median_ms, prepare_benchmark

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {
    'tiny': (('RapSAM tiny (baseline)', REPO / 'configs/rapsam/rapsam_tiny_coco_panoptic.py'),
             ('FastSAM2 tiny', REPO / 'configs/fastsam2/model_fastsam2_tiny.py')),
    'r50': (('RapSAM R50 (baseline)', REPO / 'configs/rapsam/rapsam_r50_90k_coco_panoptic.py'),
            ('FastSAM2 R50', REPO / 'configs/fastsam2/model_fastsam2_r50.py')),
    'convnext_l': (('RapSAM ConvNeXt-L (baseline)',
                    REPO / 'configs/rapsam/rapsam_convnext_l_90k_coco_panoptic.py'),
                   ('FastSAM2 ConvNeXt-L', REPO / 'configs/fastsam2/model_fastsam2_convnext_l.py')),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', choices=sorted(CONFIGS), default='tiny',
                        help='model size; the CLIP backbones start random (no pretrained file)')
    parser.add_argument('--height', type=int, default=576)
    parser.add_argument('--width', type=int, default=1024)
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per cell (median)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed runs before timing')
    parser.add_argument('--clip-frames', type=int, default=4, help='baseline VOS clip length')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    args = parser.parse_args()
    for name in ('height', 'width', 'repeats', 'clip_frames'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    if args.warmup < 0:
        parser.error(f'--warmup must be >= 0, got {args.warmup}')
    return args


def frame_sample(h: int, w: int, prompts=None) -> DetDataSample:
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0)))
    if prompts is not None:
        sample.prompts = prompts
    return sample


def mask_prompt(h: int, w: int):
    mask = torch.zeros(1, h, w)
    mask[0, h // 3:2 * h // 3, w // 3:w // 2] = 1
    return build_prompts(masks=mask)


def image_runner(model, img: torch.Tensor, prompts=None) -> Callable[[], object]:
    h, w = img.shape[-2:]
    return lambda: model.test_step(dict(inputs=[img], data_samples=[frame_sample(h, w, prompts)]))


def baseline_vos(model, img: torch.Tensor, frames: int) -> Tuple[Callable[[], object], int]:
    """A clip decoded jointly (the baseline's VOS path); returns the runner and its frame count."""
    video = copy.deepcopy(model)
    video.data_preprocessor = VideoSegDataPreprocessor(
        mean=model.data_preprocessor.mean.flatten().tolist(),
        std=model.data_preprocessor.std.flatten().tolist(), bgr_to_rgb=True, pad_size_divisor=32)
    h, w = img.shape[-2:]

    def run():
        track = TrackDataSample()
        track.video_data_samples = [frame_sample(h, w, mask_prompt(h, w) if t == 0 else None)
                                    for t in range(frames)]
        return video.test_step(dict(inputs=[img[None].expand(frames, -1, -1, -1)], data_samples=[track]))
    return run, frames


def streaming_vos(model, img: torch.Tensor) -> Callable[[], object]:
    """FastSAM2's per-frame streaming path (preprocessing included), past the prompted first frame."""
    h, w = img.shape[-2:]
    tracker = model.new_tracker()
    steps = iter(range(1 << 62))

    def track(prompts=None):
        inputs, sample = model.preprocess_frame(img, frame_sample(h, w, prompts))
        return model.track_step(tracker, inputs, sample, next(steps))

    track(mask_prompt(h, w))
    return track


@torch.no_grad()
def main() -> None:
    args = parse_args()
    prepare_benchmark(args.threads)
    img = torch.randint(0, 256, (3, args.height, args.width), dtype=torch.uint8)
    click = build_prompts(points=[[[args.width // 2, args.height // 2]]], point_labels=[[1]])

    table = Table(title=f'RapSAM vs FastSAM2 ({args.size} configs, random init) at '
                        f'{args.width}x{args.height}, '
                        f'CPU {torch.get_num_threads()} thread(s), median of {args.repeats} runs')
    for col in ('model', 'params (M)', 'w/o text tower (M)', 'mode', 'GFLOPs', 'ms', 'vs baseline'):
        table.add_column(col, justify='right')
    baseline_ms = {}
    for name, path in CONFIGS[args.size]:
        cfg = Config.fromfile(str(path))
        if 'pretrained' in cfg.model.backbone:
            cfg.model.backbone.pretrained = None  # cost, not quality: random init
        model = MODELS.build(cfg.model).eval()
        # inference only; FlopCounterMode's module tracker rejects parameter views made under
        # no_grad (they keep requires_grad without a grad_fn)
        model.requires_grad_(False)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        vision = sum(p.numel() for n, p in model.named_parameters()
                     if not n.startswith('backbone.text.')) / 1e6
        streaming = model.memory_cfg is not None
        rows = [('panoptic', image_runner(model, img), 1),
                ('interactive (1 click)', image_runner(model, img, click), 1)]
        if streaming:
            rows.append(('vos / frame', streaming_vos(model, img), 1))
        else:
            rows.append(('vos / frame', *baseline_vos(model, img, args.clip_frames)))
        for mode, run, frames in rows:
            run()  # one-time work (class-name text embeddings, lazy init) is not the mode's cost
            if mode.startswith('vos') and streaming:
                period = model.backbone.token_pruner.refresh_period if model._has_pruner() else 1
                flops = sum(gflops(run) for _ in range(period)) / period
            else:
                flops = gflops(run) / frames
            ms = median_ms(run, args.repeats, args.warmup) / frames
            ratio = f'{baseline_ms[mode] / ms:.2f}x' if mode in baseline_ms else '1.00x'
            baseline_ms.setdefault(mode, ms)
            table.add_row(name, f'{params:.2f}', f'{vision:.2f}', mode, f'{flops:.2f}', f'{ms:.1f}', ratio)
            name = ''
    Console(width=160).print(table)


if __name__ == '__main__':
    main()
