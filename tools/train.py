"""Train a FastSAM2 / RapSAM config with mmengine's Runner (single process or distributed).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--load-from CKPT]
                          [--amp [--amp-dtype bfloat16]] [--auto-scale-lr] [--cfg-options k=v ...]
    torchrun --nproc_per_node 8 tools/train.py CONFIG --launcher pytorch

The staged FastSAM2 recipe (teacher, stages, task modes) has its own launcher,
``tools/train_fast_sam2.py``, with the same flags.
"""
import argparse

import seg  # noqa: F401  (registers modules, torch.load compatibility for resume)
from seg.engine.runner_config import (
    add_common_args,
    add_train_args,
    apply_train_args,
    load_runner_config,
    run_training,
)


def main() -> None:
    parser = argparse.ArgumentParser(description='Train a segmentation model')
    add_common_args(parser)
    add_train_args(parser)
    args = parser.parse_args()
    cfg = load_runner_config(args.config, args.cfg_options, args.launcher, args.work_dir,
                             args.local_rank)
    apply_train_args(cfg, args)
    run_training(cfg)


if __name__ == '__main__':
    main()
