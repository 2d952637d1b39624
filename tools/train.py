"""Train a FastSAM2 / RapSAM config with mmengine's Runner (single process or distributed).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    torchrun --nproc_per_node 8 tools/train.py CONFIG --launcher pytorch
"""
import argparse

from mmengine.runner import Runner

import seg  # noqa: F401  (registers modules, torch.load compatibility for resume)
from seg.engine.runner_config import add_common_args, load_runner_config


def main() -> None:
    parser = argparse.ArgumentParser(description='Train a segmentation model')
    add_common_args(parser)
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from CKPT, or from the latest checkpoint in the work dir if no path')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    args = parser.parse_args()
    cfg = load_runner_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    Runner.from_cfg(cfg).train()


if __name__ == '__main__':
    main()
