"""The staged FastSAM2 recipe's launcher options (``tools/train_fast_sam2.py``) applied to a config.

Every stage config (``configs/fastsam2/stage{1..5}_*.py`` and the toy variants) declares
``stage = N``. Stages 1-4 train a ``MultiTaskDataset`` (``train_dataloader.dataset.sources``,
one entry per source with its ``task``) and, where they distil, ``model.teacher`` (a
``SAM2Teacher``) with ``model.distill`` (a ``SAM2DistillLoss``). Stage 5 (deployment) trains
nothing: it exports the stage-4 weights with the deployment settings.
"""
import argparse
import logging
import os

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from seg.datasets.multi_task_dataset import TASKS, select_task
from seg.engine.runner_config import (
    add_common_args,
    add_train_args,
    apply_train_args,
    load_runner_config,
    run_training,
)
from seg.registry import MODELS
from seg.utils import atomic_open

TASK_MODES = TASKS + ('joint', )
DEPLOY_STAGE = 5
# parameters only training uses (the distillation's learned projections W)
TRAINING_ONLY_PREFIXES = ('distill_loss.', )
DEPLOY_CHECKPOINT = 'fastsam2_deploy.pth'


def build_parser() -> argparse.ArgumentParser:
    """The arguments of ``tools/train_fast_sam2.py``: ``tools/train.py``'s plus the stage flags."""
    parser = argparse.ArgumentParser(
        description='Train one stage of the FastSAM2 recipe (online SAM2 distillation)')
    add_common_args(parser)
    add_train_args(parser)
    add_stage_args(parser)
    return parser


def prepare_config(args: argparse.Namespace) -> Config:
    """Load the config and apply every flag (stage checks, teacher, task mode, training flags)."""
    cfg = load_runner_config(args.config, args.cfg_options, args.launcher, args.work_dir,
                             args.local_rank)
    apply_stage_args(cfg, args)
    if args.stage == DEPLOY_STAGE:
        training_only = [f for f, on in (('--resume', args.resume), ('--amp', args.amp),
                                          ('--auto-scale-lr', args.auto_scale_lr)) if on]
        if training_only:
            raise ValueError(f'{", ".join(training_only)}: stage 5 (deployment) trains nothing')
        if args.load_from:
            cfg.load_from = args.load_from
        return cfg
    return apply_train_args(cfg, args)


def run(args: argparse.Namespace) -> None:
    """Train the stage (stages 1-4) or export the deployment checkpoint (stage 5)."""
    cfg = prepare_config(args)
    if args.stage == DEPLOY_STAGE:
        export_deploy_checkpoint(cfg, os.path.join(cfg.work_dir, DEPLOY_CHECKPOINT))
    else:
        run_training(cfg)


def add_stage_args(parser: argparse.ArgumentParser) -> None:
    """``--stage``, the teacher / distillation flags and ``--task-mode``."""
    parser.add_argument('--stage', type=int, choices=range(1, DEPLOY_STAGE + 1), required=True,
                        help='the stage the config is for (checked against its `stage`)')
    parser.add_argument('--teacher-config', help='SAM2 config name of the teacher '
                        '(model.teacher.config), e.g. configs/sam2.1/sam2.1_hiera_l.yaml')
    parser.add_argument('--teacher-checkpoint', help='local SAM2 checkpoint of the teacher '
                        '(model.teacher.checkpoint)')
    parser.add_argument('--task-mode', choices=TASK_MODES, default=None,
                        help='train the sources of one task only (train_dataloader.dataset.sources '
                        "of that task); 'joint' (the default) keeps every source")
    parser.add_argument('--distill-weight', type=float, default=None,
                        help='scale of the distillation losses (model.distill.loss_weight)')
    parser.add_argument('--allow-random-teacher', action='store_true',
                        help='TESTS / TOY RUNS ONLY: build the teacher with random weights when no '
                        '--teacher-checkpoint is given (its "knowledge" is noise); no effect on a '
                        'stage without teacher')


def apply_stage_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Check ``--stage`` against the config and apply the teacher / task flags (in place)."""
    declared = cfg.get('stage')
    if declared is None:
        raise ValueError(f'{cfg.filename} declares no `stage`: tools/train_fast_sam2.py runs the '
                         'FastSAM2 stage configs (configs/fastsam2/stage*.py); train other configs '
                         'with tools/train.py')
    if declared != args.stage:
        raise ValueError(f'--stage {args.stage} does not match {cfg.filename}, a stage-{declared} '
                         f'config (stage = {declared}); pass --stage {declared} or the stage-'
                         f'{args.stage} config')
    _apply_teacher_args(cfg, args)
    if args.task_mode is not None:
        if args.stage == DEPLOY_STAGE:
            raise ValueError('--task-mode: stage 5 (deployment) trains nothing')
        dataset = cfg.train_dataloader.dataset
        if 'sources' not in dataset:
            raise ValueError(f'--task-mode: the training dataset of {cfg.filename} is not a '
                             'MultiTaskDataset (no train_dataloader.dataset.sources to select from)')
        dataset.sources = select_task(dataset.sources, args.task_mode)
        cfg.task_mode = args.task_mode  # recorded in the dumped config and the logs
    return cfg


def _apply_teacher_args(cfg: Config, args: argparse.Namespace) -> None:
    flags = {'--teacher-config': args.teacher_config,
             '--teacher-checkpoint': args.teacher_checkpoint,
             '--distill-weight': args.distill_weight}
    given = [flag for flag, value in flags.items() if value is not None]
    teacher = cfg.model.get('teacher')
    if teacher is None:
        # --allow-random-teacher only permits; a script may pass it to every stage
        if given:
            raise ValueError(f'{", ".join(given)}: {cfg.filename} has no model.teacher (stage '
                             f'{cfg.stage} does not distil), so there is no teacher to configure')
        return
    if args.teacher_config is not None:
        teacher.config = args.teacher_config
    if args.teacher_checkpoint is not None:
        teacher.checkpoint = args.teacher_checkpoint
    if args.distill_weight is not None:
        if args.distill_weight < 0:
            raise ValueError(f'--distill-weight must be >= 0, got {args.distill_weight}')
        cfg.model.distill.loss_weight = args.distill_weight
    if args.allow_random_teacher:
        if args.teacher_checkpoint is None:
            teacher.checkpoint = None
        teacher.allow_random_init = True
        if teacher.checkpoint is None:
            print_log('=' * 79 + '\n--allow-random-teacher: the SAM2 teacher has RANDOM weights; '
                      'distilling it teaches noise. Tests and toy runs only: real training needs '
                      '--teacher-checkpoint (a local SAM2 checkpoint).\n' + '=' * 79,
                      logger='current', level=logging.WARNING)


def export_deploy_checkpoint(cfg: Config, out_file: str) -> str:
    """Stage 5: load ``cfg.load_from`` (the stage-4 checkpoint) into the deployment model of
    ``cfg`` and write its weights alone (no optimizer, no training-only modules such as the
    distillation projections) to ``out_file``, with the deployment config in ``meta``.

    The load is strict but for the training-only ``distill_loss.*`` tensors: any other missing or
    unexpected key is an error naming it (the config does not describe the trained model).
    """
    if not cfg.get('load_from'):
        raise ValueError(f'{cfg.filename}: stage 5 exports a trained model; set load_from (or pass '
                         '--load-from) to the stage-4 checkpoint')
    if not os.path.isfile(cfg.load_from):
        raise FileNotFoundError(f'stage 5: checkpoint not found: {cfg.load_from} (config key '
                                '`load_from` / --load-from)')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    state = _load_state_dict(cfg.load_from)
    training_only = [k for k in state if k.startswith(TRAINING_ONLY_PREFIXES)]
    state = {k: v for k, v in state.items() if k not in training_only}
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f'stage 5: {cfg.load_from} does not match the deployment model of '
                         f'{cfg.filename}: missing {result.missing_keys[:8]}, unexpected '
                         f'{result.unexpected_keys[:8]}')
    meta = dict(stage=DEPLOY_STAGE, source_checkpoint=cfg.load_from, config=cfg.pretty_text,
                dropped_training_only=len(training_only))
    with atomic_open(out_file, 'wb') as f:
        torch.save(dict(state_dict=model.state_dict(), meta=meta), f)
    print_log(f'stage 5: wrote {out_file} ({len(state)} tensors from {cfg.load_from}; '
              f'{len(training_only)} training-only tensors dropped)', logger='current')
    return out_file


def _load_state_dict(path: str) -> dict:
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'{path} is not a checkpoint (a state dict, or a dict with "state_dict")')
    return state
