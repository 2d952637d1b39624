"""DivergenceGuardHook: non-finite steps are skipped, then training stops with a message naming
the iteration and the loss term; an exploding finite loss stops it; no non-finite checkpoint is
written. The last test diverges the toy stage-3 training (huge lr) through the launcher."""
import math
import os
from types import SimpleNamespace

import pytest
import torch
from mmengine.optim import OptimWrapper
from torch import nn

import seg  # noqa: F401
from seg.engine.fastsam2_stages import run
from seg.engine.hooks import DivergenceGuardHook, TrainingDivergedError
from tests.test_engine.toy_workspace import TOY_STAGES, launcher_args, toy_workspace

NAN = float('nan')


class _Training:
    """A linear model trained by hand through the hook's events, as the runner calls them."""

    def __init__(self, hook: DivergenceGuardHook, model: nn.Module = None) -> None:
        self.model = model or nn.Linear(2, 1)
        wrapper = OptimWrapper(torch.optim.SGD(self.model.parameters(), lr=0.1))
        self.runner = SimpleNamespace(model=self.model, optim_wrapper=wrapper, iter=0)
        self.hook = hook
        hook.before_train(self.runner)

    def step(self, x: float, **logged) -> None:
        runner, hook = self.runner, self.hook
        hook.before_train_iter(runner, runner.iter)
        loss = self.model(torch.full((4, 2), x)).pow(2).mean()
        runner.optim_wrapper.update_params(loss)
        outputs = dict(loss=loss.detach(), loss_fit=loss.detach(), **logged)
        try:
            hook.after_train_iter(runner, runner.iter, outputs=outputs)
        finally:
            runner.iter += 1


def _weights(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_non_finite_steps_are_skipped_then_training_stops():
    run_ = _Training(DivergenceGuardHook(max_consecutive_skips=2))
    run_.step(1.0)
    good = _weights(run_.model)
    run_.step(NAN)  # iteration 2: NaN loss -> NaN gradients -> step skipped
    run_.step(math.inf)
    assert all(torch.equal(v, good[k]) for k, v in run_.model.state_dict().items())
    run_.step(1.0)  # a finite iteration resets the count
    assert not all(torch.equal(v, good[k]) for k, v in run_.model.state_dict().items())
    good = _weights(run_.model)
    run_.step(NAN)
    run_.step(NAN)
    with pytest.raises(TrainingDivergedError) as err:
        run_.step(NAN)  # iteration 7: the third in a row
    message = str(err.value)
    assert 'iteration 7' in message and 'loss_fit=nan' in message
    assert 'first non-finite gradient: weight' in message and 'max_consecutive_skips=2' in message
    assert all(torch.equal(v, good[k]) for k, v in run_.model.state_dict().items())


def test_a_non_finite_metric_that_is_no_loss_does_not_count():
    run_ = _Training(DivergenceGuardHook(max_consecutive_skips=0))
    run_.step(1.0, acc=torch.tensor(NAN))  # e.g. an accuracy with nothing to count
    with pytest.raises(TrainingDivergedError, match='iteration 2: non-finite loss term'):
        run_.step(NAN)


def test_non_finite_batch_norm_statistics_stop_at_once():
    """A NaN forward poisons batch-norm running statistics: skipping the step cannot undo it."""
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
    run_ = _Training(DivergenceGuardHook(max_consecutive_skips=5), model)
    with pytest.raises(TrainingDivergedError, match=r'model state is non-finite \(1\.running_mean\)'):
        run_.step(NAN)


def test_exploding_finite_loss_stops():
    hook = DivergenceGuardHook(explosion_ratio=1e4, window=8, min_history=4)
    runner = SimpleNamespace(iter=0)
    for i, (total, term) in enumerate([(66.0, 3.0), (60.0, 2.5), (70.0, 3.1), (64.0, 2.9),
                                       (650.0, 30.0)]):  # a 10x spike is no explosion
        runner.iter = i
        hook.after_train_iter(runner, i, outputs=dict(loss=total, loss_mask=term, loss_cls=1.0))
    runner.iter = 5
    with pytest.raises(TrainingDivergedError) as err:
        hook.after_train_iter(runner, 5, outputs=dict(loss=4.9e17, loss_mask=4.9e17, loss_cls=1.0))
    message = str(err.value)
    assert 'iteration 6: the loss exploded: 4.9e+17' in message and 'median 66' in message
    assert 'the term that grew most: loss_mask' in message


def test_no_non_finite_checkpoint_is_written():
    hook = DivergenceGuardHook()
    weights = dict(w=torch.ones(3), b=torch.zeros(1))
    optimizer = dict(state={0: dict(exp_avg=torch.ones(3))}, param_groups=[dict(lr=0.1)])
    hook.before_save_checkpoint(None, dict(meta=dict(iter=4), state_dict=weights, optimizer=optimizer))
    optimizer['state'][0]['exp_avg'][1] = math.inf
    with pytest.raises(TrainingDivergedError, match=r'iteration 4: not writing the checkpoint: '
                       r'optimizer state\.0\.exp_avg holds NaN / inf'):
        hook.before_save_checkpoint(None, dict(meta=dict(iter=4), state_dict=weights,
                                               optimizer=optimizer))


@pytest.mark.parametrize('kwargs', [dict(max_consecutive_skips=-1), dict(explosion_ratio=0.5),
                                    dict(window=4, min_history=5)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match='DivergenceGuardHook'):
        DivergenceGuardHook(**kwargs)


def test_toy_training_with_a_huge_lr_stops_cleanly(tmp_path_factory, tmp_path, monkeypatch):
    """lr 1e4: the first step blows the weights up, the next gradients are NaN: the step is skipped
    once (max_consecutive_skips=1), then the launcher exits with the hook's message; every
    checkpoint written holds finite weights, and none is written after the divergence."""
    monkeypatch.chdir(toy_workspace(tmp_path_factory))
    work = tmp_path / 'work'
    with pytest.raises(SystemExit) as stop:
        run(launcher_args([TOY_STAGES[3], '--stage', 3, '--work-dir', work, '--cfg-options',
                           'load_from=None', 'train_cfg.max_iters=6', 'param_scheduler=None',
                           'randomness.seed=0',
                           'optim_wrapper.optimizer.lr=1e4', 'default_hooks.logger.interval=1',
                           'default_hooks.checkpoint.interval=1',
                           'default_hooks.checkpoint.max_keep_ckpts=10',
                           'default_hooks.divergence_guard.max_consecutive_skips=1']))
    message = str(stop.value.code)
    print(message)
    assert message.startswith('DivergenceGuardHook: iteration 3: ')
    assert 'the optimizer step was skipped' in message and 'max_consecutive_skips=1' in message
    checkpoints = sorted(p.name for p in work.glob('iter_*.pth'))
    assert checkpoints == ['iter_1.pth', 'iter_2.pth']
    assert (work / 'last_checkpoint').read_text().endswith('iter_2.pth')
    for name in checkpoints:
        state = torch.load(work / name, map_location='cpu', weights_only=True)['state_dict']
        bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        assert not bad, f'{name}: non-finite {bad[:3]}'
    assert not [p for p in os.listdir(work) if p.endswith('.tmp')]
