"""Config preparation shared by the ``tools/`` launchers (train, train_fast_sam2, test)."""
import argparse
import os
import os.path as osp
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

from seg.engine.hooks import TrainingDivergedError
from seg.engine.resume_checkpoint import checkpoint_problem, find_resumable_checkpoint

AMP_DTYPES = ('float16', 'bfloat16')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Arguments every launcher takes: config, work dir, overrides, distributed launcher."""
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs, checkpoints and metric dumps go')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK (which wins)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def add_train_args(parser: argparse.ArgumentParser) -> None:
    """The training launchers' arguments (mmdet's ``tools/train.py`` flags)."""
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CKPT',
                        help='resume from CKPT, or, when no path (or "auto") is given, from the newest '
                        'checkpoint in the work dir that reads whole, whatever last_checkpoint says '
                        '(none: a fresh start from load_from)')
    parser.add_argument('--load-from', metavar='CKPT',
                        help='initialise the weights from CKPT (e.g. the previous stage), no resume')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--amp-dtype', choices=AMP_DTYPES, default=None,
                        help='autocast dtype with --amp (default float16: mmengine AmpOptimWrapper)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by (world_size * batch_size) / auto_scale_lr.base_batch_size')


def load_runner_config(path: str, cfg_options: Optional[dict], launcher: str,
                       work_dir: Optional[str], local_rank: Optional[int] = None) -> Config:
    """Load a config, apply overrides, and set the launcher and the work dir
    (``--work-dir`` > the config's ``work_dir`` > ``./work_dirs/<config name>``).

    ``local_rank`` (``--local-rank``) fills ``LOCAL_RANK`` when the launcher did not set it. A
    distributed run on a machine without CUDA goes through ``setup_cpu_distributed``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    if local_rank is not None:
        os.environ.setdefault('LOCAL_RANK', str(local_rank))
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(path))[0])
    if launcher != 'none' and not torch.cuda.is_available():
        setup_cpu_distributed(cfg, launcher)
    return cfg


def setup_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Distributed training without CUDA (tests, CPU clusters): the gloo backend, DDP without
    device ids, and the process group initialised here from torchrun's environment, because
    mmengine's pytorch launcher calls ``torch.cuda.set_device`` (the runner then finds it set up)."""
    if launcher != 'pytorch':
        raise ValueError(f'--launcher {launcher} needs CUDA; without it use --launcher pytorch '
                         '(under torchrun / tools/dist_train.sh)')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper['device_ids'] = None  # a CPU module takes no device ids
    cfg.model_wrapper_cfg = wrapper
    if not torch_dist.is_initialized():
        print_log('no CUDA device: distributed training on CPU with the gloo backend',
                  logger='current')
        torch_dist.init_process_group(backend='gloo')


def apply_train_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply ``add_train_args``' flags to a loaded config (in place; returned for chaining)."""
    if args.amp_dtype is not None and not args.amp:
        raise ValueError('--amp-dtype needs --amp')
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        if args.amp_dtype is not None:
            cfg.optim_wrapper.dtype = args.amp_dtype
        # bf16 has fp32's exponent range: no loss scaling needed (scale 1 keeps the scaler inert)
        cfg.optim_wrapper.setdefault('loss_scale', 1.0 if args.amp_dtype == 'bfloat16' else 'dynamic')
    if args.auto_scale_lr:
        auto = cfg.get('auto_scale_lr')
        if not auto or 'base_batch_size' not in auto:
            raise ValueError(f'--auto-scale-lr: the config {cfg.filename} has no '
                             'auto_scale_lr.base_batch_size (the total batch size its lr was set for)')
        cfg.auto_scale_lr.enable = True
    if args.resume is not None and args.load_from is not None:
        raise ValueError('--resume and --load-from exclude each other: resume restores the whole '
                         'training state, --load-from only initialises the weights')
    if args.resume == 'auto':
        latest = find_resumable_checkpoint(cfg.work_dir)
        if latest is not None:
            cfg.resume, cfg.load_from = True, latest
        else:
            # nothing to resume yet: a fresh start, from the config's load_from (previous stage)
            print_log(f'--resume auto: no valid checkpoint in {cfg.work_dir}; starting from '
                      f'{cfg.get("load_from") or "scratch"}', logger='current')
            cfg.resume = False
    elif args.resume:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume checkpoint not found: {args.resume}')
        problem = checkpoint_problem(args.resume)
        if problem is not None:
            raise ValueError(f'--resume {args.resume}: {problem}; pass another checkpoint, or '
                             '--resume auto for the newest valid one in the work dir')
        cfg.resume, cfg.load_from = True, args.resume
    elif args.load_from:
        if not osp.isfile(args.load_from):
            raise FileNotFoundError(f'--load-from checkpoint not found: {args.load_from}')
        cfg.resume, cfg.load_from = False, args.load_from
    return cfg


def run_training(cfg: Config) -> None:
    """Build the runner from ``cfg`` and train. A run that ``DivergenceGuardHook`` stopped exits
    with its message (exit status 1), not a traceback: the message names the iteration and cause."""
    try:
        Runner.from_cfg(cfg).train()
    except TrainingDivergedError as err:
        raise SystemExit(str(err)) from None
