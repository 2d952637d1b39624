"""Evaluate a checkpoint with the config's test dataloader and metrics (mmdet's ``tools/test.py`` flags).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl|results.json]
        [--show] [--show-dir DIR [--wait-time S]] [--metrics-out FILE] [--cfg-options k=v ...]
    bash tools/dist_test.sh CONFIG CHECKPOINT NGPUS [...]   # torchrun, --launcher pytorch
"""
import argparse
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner

import seg  # noqa: F401
from seg.engine.hooks import SegVisualizationHook
from seg.engine.runner_config import add_common_args, load_runner_config
from seg.evaluation.metrics.dump_results import FORMATS
from seg.utils import atomic_write_json


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a segmentation model')
    add_common_args(parser)
    parser.add_argument('checkpoint', help='checkpoint file (local path)')
    parser.add_argument('--out', help=f'also dump every prediction to this file ({", ".join(FORMATS)}; '
                        'masks as COCO RLE)')
    parser.add_argument('--show', action='store_true', help='show each prediction in a window')
    parser.add_argument('--show-dir', help='write an overlay picture per test image (per frame of a '
                        'video) to this folder; a relative one is under <work_dir>/<timestamp>/')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds each --show window stays')
    parser.add_argument('--metrics-out', help='also write the metrics as JSON to this file (atomic)')
    return parser.parse_args()


def apply_test_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply ``--out`` and ``--show / --show-dir / --wait-time`` to a loaded config (in place)."""
    if args.out is not None:
        if osp.splitext(args.out)[1] not in FORMATS:
            raise ValueError(f'--out must end with one of {FORMATS}, got {args.out!r}')
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
        cfg.test_evaluator = [*evaluators, dict(type='DumpSegResults', out_file=args.out)]
    if args.show or args.show_dir:
        hooks = cfg.setdefault('default_hooks', {})
        hook = hooks.get('visualization') or dict(type='SegVisualizationHook')
        if hook['type'] not in ('SegVisualizationHook', SegVisualizationHook):
            raise ValueError(f'--show / --show-dir draw with SegVisualizationHook, but the config\'s '
                             f'default_hooks.visualization is {hook["type"]}')
        hook.update(draw=True, show=args.show, wait_time=args.wait_time, test_out_dir=args.show_dir)
        hooks['visualization'] = hook
    return cfg


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {args.checkpoint}')
    cfg = load_runner_config(args.config, args.cfg_options, args.launcher, args.work_dir,
                             args.local_rank)
    cfg.load_from = args.checkpoint
    apply_test_args(cfg, args)
    metrics = Runner.from_cfg(cfg).test()
    if args.metrics_out:
        atomic_write_json(dict(metrics), args.metrics_out)


if __name__ == '__main__':
    main()
