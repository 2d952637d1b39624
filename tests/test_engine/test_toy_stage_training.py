"""Each toy stage config builds and trains one iteration on the toy data (in process, through the
launcher's config preparation) with the stage's losses; the paramwise lr and ``--auto-scale-lr``
reach the optimizer; stage 5 exports stage-4 weights for the deployment model."""
import copy

import pytest
import torch
from mmengine.runner import Runner

import seg  # noqa: F401
from seg.engine.fastsam2_stages import DEPLOY_CHECKPOINT, prepare_config, run
from seg.registry import MODELS
from tests.test_engine.toy_workspace import TOY_STAGES, launcher_args, short_run_options, toy_workspace

# loss keys each stage must produce in one iteration (besides the head's usual ones)
STAGE_LOSSES = {1: {'loss_distill_feat', 'loss_cls', 'loss_mask'},
                2: {'loss_distill_mask', 'loss_distill_prompt', 'loss_prompt_mask',
                    'exit1.loss_prompt_mask'},
                3: {'loss_dpsr_mask', 'loss_dpsr_feat', 'loss_prompt_dice'},
                4: {'loss_distill_feat'}}


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    return toy_workspace(tmp_path_factory)


def _train_one_iter(stage: int, work_dir, *extra):
    cfg = prepare_config(launcher_args([TOY_STAGES[stage], '--stage', stage, '--work-dir', work_dir,
                                        *extra, *short_run_options(1, 1)]))
    cfg.load_from = None  # each stage here starts from random weights
    runner = Runner.from_cfg(cfg)
    before = copy.deepcopy(runner.model.state_dict())
    runner.train()
    assert runner.iter == 1 and (work_dir / 'iter_1.pth').is_file()
    after = runner.model.state_dict()
    assert any(not torch.equal(after[k], v) for k, v in before.items()), 'nothing trained'
    return runner


def _check_losses(runner, stage: int) -> None:
    missing = {f'train/{k}' for k in STAGE_LOSSES[stage]} - set(runner.message_hub.log_scalars)
    assert not missing, f'stage {stage}: losses not logged: {sorted(missing)}'


def _check_teacher_outside_training(runner) -> None:
    """The teacher is outside the state dict and the optimizer and stays frozen; W trains."""
    model, state = runner.model, runner.model.state_dict()
    assert model.teacher is not None and not any(k.startswith('teacher') for k in state)
    assert not any(p.requires_grad for p in model.teacher.parameters())
    optimised = {id(p) for g in runner.optim_wrapper.param_groups for p in g['params']}
    assert not optimised & {id(p) for p in model.teacher.parameters()}
    assert any(k.startswith('distill_loss.projections') for k in state)


def test_stage1_trains_with_the_geometry_branch_faster_than_clip_and_scaled_lr(
        workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(workspace)  # the toy configs read data/toy/
    # toy lr 1e-3 for batch 2; claimed base batch 16 -> every lr x 2/16
    runner = _train_one_iter(1, tmp_path / 'work', '--auto-scale-lr', '--cfg-options',
                             'auto_scale_lr.base_batch_size=16')
    _check_losses(runner, 1)
    _check_teacher_outside_training(runner)
    names = {id(p): n for n, p in runner.model.named_parameters()}
    # (mmengine adds a parameter-less group tracking the base lr: not a model parameter)
    lrs = {names[id(p)]: g['initial_lr'] for g in runner.optim_wrapper.param_groups
           for p in g['params'] if id(p) in names}
    scaled = 1e-3 * 2 / 16
    assert lrs['backbone.geom_branch.edge.depthwise_conv.conv.weight'] == pytest.approx(scaled)
    assert lrs['backbone.token_fusion.sem_in.weight'] == pytest.approx(scaled)
    assert lrs['backbone.visual.stem.0.weight'] == pytest.approx(0.1 * scaled)
    assert lrs['panoptic_head.query_feat.weight'] == pytest.approx(scaled)


@pytest.mark.parametrize('stage', [2, 3, 4])
def test_toy_stage_trains_one_iteration(stage, workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(workspace)
    runner = _train_one_iter(stage, tmp_path / 'work')
    _check_losses(runner, stage)
    if stage == 3:  # VOS: no teacher
        assert runner.model.teacher is None
    else:
        _check_teacher_outside_training(runner)


def test_stage5_exports_the_stage4_weights(tmp_path):
    """Stage 5 writes the stage-4 weights minus the distillation projections; the deployment
    model loads them strictly."""
    stage4 = MODELS.build(prepare_config(launcher_args([TOY_STAGES[4], '--stage', 4])).model)
    trained = stage4.state_dict()
    ckpt = tmp_path / 'stage4.pth'
    torch.save(dict(state_dict=trained, meta=dict(iter=40)), ckpt)
    run(launcher_args([TOY_STAGES[5], '--stage', 5, '--work-dir', tmp_path / 'deploy',
                       '--load-from', ckpt]))
    exported = torch.load(tmp_path / 'deploy' / DEPLOY_CHECKPOINT, weights_only=True)
    assert exported['meta']['stage'] == 5 and 'resize_longest_side=128' in exported['meta']['config']
    state = exported['state_dict']
    assert any(k.startswith('distill_loss') for k in trained)
    assert not any(k.startswith('distill_loss') for k in state)
    assert state.keys() == {k for k in trained if not k.startswith('distill_loss')}
    assert all(torch.equal(v, trained[k]) for k, v in state.items())
    deploy = MODELS.build(prepare_config(launcher_args([TOY_STAGES[5], '--stage', 5])).model)
    deploy.load_state_dict(state, strict=True)
