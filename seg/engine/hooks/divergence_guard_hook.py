"""Catch a diverging training run: non-finite losses or gradients, and losses that explode.

Without it a NaN loss turns every weight into NaN at the next optimizer step, the run goes on
logging ``nan`` and its checkpoints are saved as if fine; a loss that explodes while staying finite
(66 -> 4.9e17 -> 2.1e24) goes unnoticed just the same.
"""
import logging
import math
import statistics
from collections import deque
from typing import Any, Deque, Dict, Iterator, List, Optional, Tuple

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict

from seg.registry import HOOKS


class TrainingDivergedError(RuntimeError):
    """Training stopped by ``DivergenceGuardHook``; the message names the iteration and cause."""


def _tensors(obj: Any, path: str = '') -> Iterator[Tuple[str, torch.Tensor]]:
    """Every floating-point tensor in nested dicts / lists, with its key path."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() or obj.is_complex():
            yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _tensors(value, f'{path}.{key}' if path else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _tensors(value, f'{path}[{i}]')


def first_non_finite(obj: Any) -> Optional[str]:
    """The key path of the first tensor in ``obj`` (nested dicts / lists) holding a NaN or inf."""
    return next((path for path, t in _tensors(obj) if not torch.isfinite(t).all()), None)


@HOOKS.register_module()
class DivergenceGuardHook(Hook):
    """Check every iteration's loss terms and gradient norm; skip non-finite steps, stop a run
    that stays non-finite or whose loss explodes, and never write a non-finite checkpoint.

    - Before each optimizer step (an optimizer step pre-hook), the total gradient norm is checked;
      when it is NaN / inf the step is skipped (the gradients are dropped, so the weights and the
      optimizer state keep their values; the schedulers advance as usual). Under AMP, the loss
      scaler already skips steps with inf gradients and lowers its scale: that is not counted.
    - After each iteration, the logged loss terms (keys containing ``'loss'``) are checked. An
      iteration with a non-finite loss term or a skipped step is *non-finite*; after
      ``max_consecutive_skips`` of them in a row, the next one stops training with a
      ``TrainingDivergedError`` naming the iteration, the loss terms and the first parameter with
      a non-finite gradient. A non-finite parameter or buffer (a NaN forward updates batch-norm
      statistics whether or not the step is skipped) stops training at once.
    - A finite total loss above ``explosion_ratio`` times the median of the last ``window`` finite
      ones (once ``min_history`` are known) stops training too.
    - Before every checkpoint save, the weights and the optimizer state are checked: a non-finite
      one stops training before anything is written.

    Runs before ``CheckpointHook``, so the checkpoint of a diverged iteration is never written.

    Args:
        max_consecutive_skips: non-finite iterations in a row that are skipped before training
            stops (0: stop at the first).
        explosion_ratio: the loss / running-median ratio that stops training; ``None``: off.
        window: how many recent finite losses the median is taken over.
        min_history: finite losses needed before the explosion check applies.
    """
    priority = 'ABOVE_NORMAL'  # before CheckpointHook (VERY_LOW) in after_train_iter

    def __init__(self, max_consecutive_skips: int = 3, explosion_ratio: Optional[float] = 1e4,
                 window: int = 50, min_history: int = 5) -> None:
        if max_consecutive_skips < 0:
            raise ValueError(f'DivergenceGuardHook: max_consecutive_skips must be >= 0, got '
                             f'{max_consecutive_skips}')
        if explosion_ratio is not None and not explosion_ratio > 1:
            raise ValueError(f'DivergenceGuardHook: explosion_ratio must be > 1 (or None: off), '
                             f'got {explosion_ratio}')
        if window < 1 or not 1 <= min_history <= window:
            raise ValueError(f'DivergenceGuardHook: need window >= 1 and 1 <= min_history <= '
                             f'window, got window={window}, min_history={min_history}')
        self.max_consecutive_skips = max_consecutive_skips
        self.explosion_ratio = explosion_ratio
        self.min_history = min_history
        self._history: Dict[str, Deque[float]] = {}
        self._window = window
        self._consecutive = 0
        self._skipped: Optional[Tuple[float, str]] = None  # this iteration's skipped step
        self._handles: List[Any] = []
        self._names: Dict[int, str] = {}

    # ------------------------------------------------------------------ the optimizer step
    def before_train(self, runner) -> None:
        self._names = {id(p): name for name, p in self._unwrapped(runner).named_parameters()}
        wrappers = runner.optim_wrapper
        wrappers = wrappers.values() if isinstance(wrappers, OptimWrapperDict) else [wrappers]
        self._handles = [w.optimizer.register_step_pre_hook(self._check_gradients)
                         for w in wrappers]

    @staticmethod
    def _unwrapped(runner) -> torch.nn.Module:
        # parameter names as in the checkpoints, without DDP's 'module.' prefix
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _check_gradients(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        params = [p for group in optimizer.param_groups for p in group['params']
                  if p.grad is not None]
        if not params:
            return
        norm = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
        if math.isfinite(norm):
            return
        bad = next((self._names.get(id(p), f'<unnamed parameter {tuple(p.shape)}>')
                    for p in params if not torch.isfinite(p.grad).all()),
                   'none (the norm overflowed: every gradient is finite but huge)')
        self._skipped = (norm, bad)
        for p in params:  # an optimizer leaves parameters without gradient untouched
            p.grad = None

    # ------------------------------------------------------------------ the iteration's losses
    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        self._skipped = None

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        iteration = runner.iter + 1  # as the logs count
        terms = {k: float(v.detach() if isinstance(v, torch.Tensor) else v)
                 for k, v in (outputs or {}).items() if 'loss' in k}
        non_finite = {k: v for k, v in terms.items() if not math.isfinite(v)}
        skipped, self._skipped = self._skipped, None
        bad = bool(non_finite) or skipped is not None
        explosion = None if bad else self._explosion(iteration, terms)
        bad, exploded = self._any_rank(bad, explosion is not None)
        if bad:
            self._non_finite_iteration(runner, iteration, non_finite, skipped, terms.get('loss'))
            return
        self._consecutive = 0
        if exploded:
            self._stop(explosion or f'DivergenceGuardHook: iteration {iteration}: the loss '
                       'exploded on another rank')
        for key, value in terms.items():
            self._history.setdefault(key, deque(maxlen=self._window)).append(value)

    def _non_finite_iteration(self, runner, iteration: int, non_finite: Dict[str, float],
                              skipped: Optional[Tuple[float, str]], total: Optional[float]) -> None:
        self._consecutive += 1
        named = {k: v for k, v in non_finite.items() if k != 'loss'} or non_finite
        if named:
            what = ['non-finite loss term(s) ' + ', '.join(f'{k}={v}' for k, v in list(named.items())[:8])]
        elif skipped is not None:
            what = [f'loss {total:.4g}' if total is not None else 'finite loss terms']
        else:
            what = ['non-finite loss or gradient on another rank']
        if skipped is not None:
            what.append(f'gradient norm {skipped[0]} (first non-finite gradient: {skipped[1]}); '
                        'the optimizer step was skipped')
        message = f'DivergenceGuardHook: iteration {iteration}: {"; ".join(what)}'
        bad_state = first_non_finite(dict(self._unwrapped(runner).state_dict()))
        if bad_state is not None:
            self._stop(f'{message}. The model state is non-finite ({bad_state}): skipping steps '
                       'cannot undo that (e.g. batch-norm statistics of a NaN forward)')
        if self._consecutive > self.max_consecutive_skips:
            self._stop(f'{message}. {self._consecutive} non-finite iteration(s) in a row exceed '
                       f'max_consecutive_skips={self.max_consecutive_skips}')
        print_log(f'{message} ({self._consecutive} of max_consecutive_skips='
                  f'{self.max_consecutive_skips} in a row)', logger='current', level=logging.WARNING)

    def _explosion(self, iteration: int, terms: Dict[str, float]) -> Optional[str]:
        """The message when the total loss exploded, else ``None``."""
        total, history = terms.get('loss'), self._history.get('loss')
        if self.explosion_ratio is None or total is None or history is None or \
                len(history) < self.min_history:
            return None
        median = statistics.median(history)
        if median <= 0 or total <= self.explosion_ratio * median:
            return None
        return (f'DivergenceGuardHook: iteration {iteration}: the loss exploded: {total:.4g} is '
                f'{total / median:.3g} x the median {median:.4g} of the last {len(history)} '
                f'iterations (explosion_ratio={self.explosion_ratio:g})'
                f'{self._largest_growth(terms)}')

    def _largest_growth(self, terms: Dict[str, float]) -> str:
        growth = {k: v / statistics.median(self._history[k]) for k, v in terms.items()
                  if k != 'loss' and self._history.get(k) and statistics.median(self._history[k]) > 0}
        if not growth:
            return ''
        key = max(growth, key=growth.get)
        return f'; the term that grew most: {key}={terms[key]:.4g} ({growth[key]:.3g} x its median)'

    @staticmethod
    def _any_rank(*flags: bool) -> Tuple[bool, ...]:
        """Each flag, true when it is on any rank: the ranks skip, stop or go on together (a rank
        stopping alone would leave the others waiting in DDP's all-reduce)."""
        if get_world_size() == 1:
            return flags
        value = torch.tensor([float(f) for f in flags])
        all_reduce(value, op='max')
        return tuple(bool(v) for v in value.tolist())

    def _stop(self, message: str) -> None:
        message += ('. Training stopped; the checkpoints written so far hold finite weights '
                    '(lower the learning rate, or check the data of this iteration).')
        print_log(message, logger='current', level=logging.ERROR)
        raise TrainingDivergedError(message)

    # ------------------------------------------------------------------ checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key in ('state_dict', 'optimizer'):
            bad = first_non_finite(checkpoint.get(key))
            if bad is not None:
                self._stop(f'DivergenceGuardHook: iteration {checkpoint["meta"]["iter"]}: not writing '
                           f'the checkpoint: {key} {bad} holds NaN / inf')
