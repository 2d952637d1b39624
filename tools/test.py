"""Evaluate a checkpoint with the config's test dataloader and metrics.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--metrics-out FILE] [--cfg-options k=v ...]
"""
import argparse
import os.path as osp

from mmengine.runner import Runner

import seg  # noqa: F401
from seg.engine.runner_config import add_common_args, load_runner_config
from seg.utils import atomic_write_json


def main() -> None:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a segmentation model')
    add_common_args(parser)
    parser.add_argument('checkpoint', help='checkpoint file (local path)')
    parser.add_argument('--metrics-out', help='also write the metrics as JSON to this file (atomic)')
    args = parser.parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {args.checkpoint}')
    cfg = load_runner_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    cfg.load_from = args.checkpoint
    metrics = Runner.from_cfg(cfg).test()
    if args.metrics_out:
        atomic_write_json(dict(metrics), args.metrics_out)


if __name__ == '__main__':
    main()
