"""Exact resume: a resumed run continues as the uninterrupted run would have, bit for bit.

mmengine restores the weights, the optimizer, the schedulers and the iteration, but not the random
state, and finds its place in the data by loading (and transforming) every batch already trained
again, which draws from the global random generators as it goes. So after a kill and ``--resume``,
the data augmentation, the dropout and the loss point sampling all differ from the first resumed
iteration on. ``ExactResumeHook`` makes the checkpoint carry what is missing:

- the random states (Python, NumPy, torch, and CUDA where it is in use) of the training stream,
  taken at the end of every iteration and put back before the next batch is fetched (so what runs
  in between, validation for instance, draws from its own stream in both runs alike);
- the data position: the dataloader epoch and the number of batches consumed in it. On resume the
  batch sampler alone is fast-forwarded to it (indices only, no image is loaded), and mmengine's
  replay of the trained batches is answered without loading anything.

Hooks that change the sampler per iteration (``ClipLengthCurriculumHook``) implement
``prepare_sampler(runner, iteration)``; the fast-forward calls it before each skipped batch, so the
sampler draws them exactly as it did in training.

Exactness holds for ``IterBasedTrainLoop`` with ``num_workers=0``. With dataloader workers the data
order is still exact, but the workers' own random streams restart at the resume. Under DDP the
checkpoint holds the random state of rank 0 (the rank that writes it), which only rank 0 restores.
When training starts, the hook also removes from the work dir the temporary files of checkpoint
writes that a kill interrupted (``seg.utils.atomic_io.remove_orphan_temp_files``).
"""
import logging
import random
import time
from typing import Any, Callable, Dict, Iterator, Optional

import numpy as np
import torch
from mmengine.dist import get_rank, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from torch.utils.data import DataLoader

from seg.registry import HOOKS
from seg.utils.atomic_io import remove_orphan_temp_files

RESUME_STATE_KEY = 'resume_state'


def capture_rng_state() -> Dict[str, Any]:
    """The global random states (Python, NumPy, torch, and CUDA when initialised), in types that
    ``torch.load(weights_only=True)`` reads back."""
    np_state = np.random.get_state(legacy=False)
    state = dict(python=random.getstate(),
                 numpy=dict(np_state, state=dict(np_state['state'],
                                                 key=torch.from_numpy(np_state['state']['key'].astype(np.int64)))),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Set the global random states from ``capture_rng_state``'s result."""
    random.setstate(state['python'])
    np_state = state['numpy']
    key = np.asarray(np_state['state']['key'].cpu().numpy(), dtype=np.uint32)
    np.random.set_state(dict(np_state, state=dict(np_state['state'], key=key)))
    torch.set_rng_state(state['torch'].cpu())  # a resume may map the checkpoint onto the GPU
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) != torch.cuda.device_count():
            print_log(f'exact resume: the checkpoint holds the CUDA random states of {len(cuda)} '
                      f'devices, this process sees {torch.cuda.device_count()}: CUDA random state '
                      'not restored', logger='current', level=logging.WARNING)
        else:
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


class _SkipFirstBatches:
    """A batch sampler's first ``skip`` batches drawn and dropped (indices only, nothing is
    loaded); ``before_batch(i)`` runs before batch ``i`` of the epoch is drawn."""

    def __init__(self, batch_sampler, skip: int, before_batch: Callable[[int], None]) -> None:
        self.batch_sampler, self.skip, self.before_batch = batch_sampler, skip, before_batch

    def __iter__(self) -> Iterator:
        batches = iter(self.batch_sampler)
        for i in range(self.skip):
            self.before_batch(i)
            if next(batches, None) is None:
                return
        self.before_batch(self.skip)
        yield from batches

    def __len__(self) -> int:
        return len(self.batch_sampler)


class TrainDataIterator:
    """``IterBasedTrainLoop``'s infinite batch iterator (the dataloader restarted, with the next
    sampler epoch, when it runs out), which also knows its position and restores the training
    random stream before each fetch.

    Args:
        dataloader: the training dataloader.
        epoch, batches: where to start: the dataloader epoch and the batches already consumed
            in it (drawn from the batch sampler and dropped).
        first_iteration: the training iteration of the epoch's first batch (for ``before_batch``).
        before_batch: called with the training iteration before each skipped batch is drawn and
            before the first batch that is not skipped.
        noop_calls: how many ``next`` calls to answer with ``None`` without touching the data
            (mmengine's replay of the trained batches after a resume).
        rng_state: the random state to restore before the first fetch.
    """

    def __init__(self, dataloader: DataLoader, epoch: int = 0, batches: int = 0,
                 first_iteration: int = 0, before_batch: Optional[Callable[[int], None]] = None,
                 noop_calls: int = 0, rng_state: Optional[Dict[str, Any]] = None) -> None:
        self.dataloader = dataloader
        self.epoch, self.batches = epoch, batches
        self.rng_state = rng_state
        self._first_iteration = first_iteration
        self._before_batch = before_batch
        self._noop_calls = noop_calls
        self._iterator: Optional[Iterator] = None

    def __iter__(self) -> 'TrainDataIterator':
        return self

    def position(self) -> Dict[str, int]:
        """The dataloader epoch and the batches consumed in it."""
        return dict(epoch=self.epoch, batches=self.batches)

    def _set_sampler_epoch(self) -> None:
        loader = self.dataloader
        for sampler in (loader.sampler, getattr(loader.batch_sampler, 'sampler', None)):
            if hasattr(sampler, 'set_epoch'):
                sampler.set_epoch(self.epoch)
                return

    def _start_epoch(self, skip: int) -> Iterator:
        self._set_sampler_epoch()
        loader = self.dataloader
        if skip == 0 or loader.batch_sampler is None:
            iterator = iter(loader)
            for _ in range(skip):  # no batch sampler to fast-forward: load the skipped batches
                next(iterator)
            return iterator
        first = self._first_iteration
        before = self._before_batch or (lambda i: None)
        # DataLoader forbids reassigning batch_sampler after construction; the fast-forwarding
        # one is only needed while the iterator is created (it draws its indices from it)
        original = loader.batch_sampler
        object.__setattr__(loader, 'batch_sampler',
                           _SkipFirstBatches(original, skip, lambda i: before(first + i)))
        try:
            return iter(loader)
        finally:
            object.__setattr__(loader, 'batch_sampler', original)

    def __next__(self) -> Any:
        if self._noop_calls > 0:
            self._noop_calls -= 1
            return None
        if self._iterator is None:
            self._iterator = self._start_epoch(self.batches)
        if self.rng_state is not None:
            restore_rng_state(self.rng_state)
        try:
            batch = next(self._iterator)
        except StopIteration:
            self.epoch, self.batches = self.epoch + 1, 0
            if self.dataloader.num_workers > 0:
                time.sleep(2)  # as mmengine: avoids a deadlock of the workers at the epoch change
            self._iterator = self._start_epoch(0)
            batch = next(self._iterator)
        self.batches += 1
        return batch


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Save the random states and the data position in every checkpoint and restore them on
    resume, so that the resumed run equals the uninterrupted one (see the module docstring);
    remove the temporary files of interrupted checkpoint writes when training starts."""
    priority = 'VERY_HIGH'  # the random state is taken before any other hook's after_train_iter

    def __init__(self) -> None:
        self._loaded: Optional[Dict[str, Any]] = None
        self._iterator: Optional[TrainDataIterator] = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # a load_from (weights of a previous stage) starts at iteration 0: ignored in before_train
        self._loaded = checkpoint.get(RESUME_STATE_KEY)

    def before_train(self, runner) -> None:
        if is_main_process():
            removed = remove_orphan_temp_files(runner.work_dir)
            if removed:
                print_log(f'removed {len(removed)} temporary file(s) of interrupted checkpoint writes '
                          f'in {runner.work_dir}: {[p.name for p in removed]}', logger='current')
        loop = runner.train_loop
        if not isinstance(loop, IterBasedTrainLoop):
            print_log(f'ExactResumeHook: {type(loop).__name__} is not an IterBasedTrainLoop; the '
                      'random state and the data position are not saved', logger='current',
                      level=logging.WARNING)
            return
        loaded, self._loaded = self._loaded, None
        if runner.iter == 0:
            self._iterator = TrainDataIterator(loop.dataloader)
        elif loaded is None:
            # a checkpoint without the state: mmengine's replay (loading the trained batches)
            # runs through the new iterator, which thus learns the position; randomness differs
            print_log('resume: the checkpoint has no random state or data position (written '
                      'without ExactResumeHook); the run continues, but not as the interrupted one '
                      'would have', logger='current', level=logging.WARNING)
            self._iterator = TrainDataIterator(loop.dataloader)
        else:
            self._iterator = self._resumed_iterator(runner, loop, loaded)
        loop.dataloader_iterator = self._iterator

    def _resumed_iterator(self, runner, loop: IterBasedTrainLoop,
                          state: Dict[str, Any]) -> TrainDataIterator:
        data, rng = state['data'], state['rng']
        if state['iteration'] != runner.iter or data['batches'] > runner.iter:
            raise ValueError(f'resume: the checkpoint\'s {RESUME_STATE_KEY} (iteration '
                             f'{state["iteration"]}, {data["batches"]} batches into dataloader '
                             f'epoch {data["epoch"]}) does not match its iteration {runner.iter}')
        if get_world_size() > 1 and get_rank() != 0:
            rng = None  # rank 0's stream: another rank keeps its own seeded one
        preparers = [h for h in runner.hooks if callable(getattr(h, 'prepare_sampler', None))]

        def before_batch(iteration: int) -> None:
            for hook in preparers:
                hook.prepare_sampler(runner, iteration)

        print_log(f'exact resume at iteration {runner.iter}: dataloader epoch {data["epoch"]}, '
                  f'{data["batches"]} batches into it (sampler fast-forward, no data loaded), '
                  'random state restored', logger='current')
        return TrainDataIterator(loop.dataloader, epoch=data['epoch'], batches=data['batches'],
                                 first_iteration=runner.iter - data['batches'],
                                 before_batch=before_batch, noop_calls=runner.iter, rng_state=rng)

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        if self._iterator is not None:
            self._iterator.rng_state = capture_rng_state()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._iterator is None or self._iterator.rng_state is None:
            return  # not training (or no iteration yet): nothing to resume from
        checkpoint[RESUME_STATE_KEY] = dict(iteration=checkpoint['meta']['iter'],
                                            rng=self._iterator.rng_state,
                                            data=self._iterator.position())
