"""``tools/train_fast_sam2.py`` as users run it: DDP on 2 CPU processes (gloo) equals one process
with the same total batch, and a run killed with SIGKILL resumes (``--resume auto``) from its last
checkpoint with identical weights and optimizer state, at the right iteration."""
import copy
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp
from mmengine.hooks import Hook
from mmengine.runner import Runner

import seg  # noqa: F401
from seg.engine.fastsam2_stages import prepare_config, run
from seg.engine.resume_checkpoint import find_resumable_checkpoint
from tests.conftest import REPO_ROOT
from tests.test_engine.toy_workspace import TOY_STAGES, launcher_args, short_run_options, toy_workspace

# One process with 2 samples and two with one each legitimately differ in BatchNorm statistics
# and in per-sample random draws (flip, resize, the head's point sampling and matching); these
# options remove both, so the comparison isolates the DDP mechanics (the sampler's sharding, the
# gradient averaging): the panoptic source (no prompts), no random augmentation, GroupNorm in
# the geometry branch, the CLIP trunk frozen, the point-sampled head losses at weight 0 (the
# distillation loss, deterministic, trains the model).
DETERMINISTIC = [
    'train_dataloader.dataset.sources.coco_panoptic.dataset.pipeline.2.prob=0.0',
    'train_dataloader.dataset.sources.coco_panoptic.dataset.pipeline.3.ratio_range=(1.0,1.0)',
    'model.backbone.freeze=True',
    'model.backbone.geom_branch.norm_cfg.type=GN', 'model.backbone.geom_branch.norm_cfg.num_groups=4',
    'model.panoptic_head.loss_cls.type=mmdet.CrossEntropyLoss',
    'model.panoptic_head.loss_cls.loss_weight=0.0',
    'model.panoptic_head.loss_mask.type=mmdet.CrossEntropyLoss',
    'model.panoptic_head.loss_mask.use_sigmoid=True', 'model.panoptic_head.loss_mask.loss_weight=0.0',
    'model.panoptic_head.loss_dice.type=mmdet.DiceLoss', 'model.panoptic_head.loss_dice.loss_weight=0.0',
]


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    return toy_workspace(tmp_path_factory)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_rank(rank: int, world: int, port: int, argv: list) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    run(launcher_args(argv))
    torch.distributed.destroy_process_group()


def _stage1_argv(work_dir, batch: int, *options, launcher: str = 'none') -> list:
    return [TOY_STAGES[1], '--stage', 1, '--task-mode', 'panoptic', '--work-dir', work_dir,
            '--launcher', launcher, *short_run_options(2, 1), *DETERMINISTIC, *options,
            f'train_dataloader.batch_size={batch}', f'train_dataloader.sampler.batch_size={batch}']


def test_ddp_two_processes_equal_one_process_with_the_same_total_batch(workspace, tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(workspace)
    single = tmp_path / 'single'
    run(launcher_args(_stage1_argv(single, 2, 'default_hooks.checkpoint.max_keep_ckpts=2')))
    ddp = tmp_path / 'ddp'
    # fork: the ranks inherit the imported modules (spawned interpreters would re-import them)
    mp.start_processes(_ddp_rank, args=(2, _free_port(), _stage1_argv(ddp, 1, launcher='pytorch')),
                       nprocs=2, start_method='fork')
    a = torch.load(single / 'iter_2.pth', weights_only=False)
    b = torch.load(ddp / 'iter_2.pth', weights_only=False)
    assert a['meta']['iter'] == b['meta']['iter'] == 2
    for key, value in a['state_dict'].items():
        torch.testing.assert_close(b['state_dict'][key], value, rtol=1e-5, atol=1e-6,
                                   msg=lambda m: f'{key}: {m}')
    # not vacuous: the second step moved the weights the distillation reaches
    first = torch.load(single / 'iter_1.pth', weights_only=False)['state_dict']
    moved = [k for k, v in a['state_dict'].items() if not torch.equal(v, first[k])]
    assert any(k.startswith('neck.') for k in moved) and any(k.startswith('backbone.geom') for k in moved)


class _StateAtStart(Hook):
    """Records the model and optimizer state when training starts (after the resume)."""

    def before_train(self, runner) -> None:
        self.iter = runner.iter
        self.weights = {k: v.clone() for k, v in runner.model.state_dict().items()}
        self.optim = copy.deepcopy(runner.optim_wrapper.state_dict())  # tensors update in place


def test_resume_after_kill_continues_with_identical_state(workspace, tmp_path):
    work = tmp_path / 'work'
    # a long run, a checkpoint every iteration: killed mid-way
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / 'tools/train_fast_sam2.py'), str(TOY_STAGES[1]),
         '--stage', '1', '--work-dir', str(work), *short_run_options(1000, 1)],
        cwd=workspace, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    last = work / 'last_checkpoint'
    try:
        while not (last.is_file() and 'iter_2.pth' in last.read_text()):
            assert proc.poll() is None, f'training died: {proc.stderr.read()[-3000:]}'
            assert time.time() < deadline, 'no second checkpoint within 300 s'
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # iter_2 or a later one written before the kill (last_checkpoint may lag the newest by one)
    resumed_from = find_resumable_checkpoint(str(work))
    k = int(resumed_from.rsplit('iter_', 1)[1].split('.')[0])
    ckpt = torch.load(resumed_from, weights_only=False)

    os.chdir(workspace)
    try:
        cfg = prepare_config(launcher_args([TOY_STAGES[1], '--stage', 1, '--work-dir', work,
                                            '--resume', 'auto', *short_run_options(k + 1, 1000)]))
        runner = Runner.from_cfg(cfg)
        start = _StateAtStart()
        runner.register_hook(start, priority='VERY_LOW')
        runner.train()
    finally:
        os.chdir(REPO_ROOT)
    assert start.iter == k and runner.iter == k + 1
    for name, value in ckpt['state_dict'].items():
        assert torch.equal(start.weights[name], value), f'{name} differs after resume'
    saved = ckpt['optimizer']
    assert start.optim['param_groups'] == saved['param_groups']
    for pid, state in saved['state'].items():
        for key, value in state.items():
            assert torch.equal(torch.as_tensor(start.optim['state'][pid][key]),
                               torch.as_tensor(value)), f'optimizer {pid}.{key} differs'
    # the next step continues AdamW's history (parameters a task batch does not reach skip a step)
    after = runner.optim_wrapper.state_dict()['state']
    grown = {int(after[pid]['step']) - int(state['step']) for pid, state in saved['state'].items()}
    assert grown <= {0, 1} and max(int(s['step']) for s in after.values()) == k + 1
