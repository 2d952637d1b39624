"""The VOS clip-length curriculum: short clips first, longer ones later in training."""
from typing import List, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.logging import print_log

from seg.datasets.clip_sampling import IntOrRange, as_range
from seg.registry import HOOKS


@HOOKS.register_module()
class ClipLengthCurriculumHook(Hook):
    """Set the training sampler's ``clip_length`` by iteration (``VOSCurriculumSampler`` or
    ``MultiTaskSampler``, whose ``'vos'`` sources it applies to).

    Args:
        schedule: ``[(start_iter, clip_length), ...]`` with increasing ``start_iter``, the first 0;
            e.g. ``[(0, (4, 6)), (20000, (12, 16))]``. ``clip_length`` is an int or an inclusive
            ``(min, max)`` range. The length of iteration ``i`` is that of the last entry with
            ``start_iter <= i`` (also after a resume). The sampler hands out indices as the
            dataloader fetches them, so with ``num_workers=0`` the switch is exact; with workers,
            the few batches already prefetched keep the previous length.
    """
    priority = 'NORMAL'

    def __init__(self, schedule: Sequence[Tuple[int, IntOrRange]]) -> None:
        self.schedule: List[Tuple[int, IntOrRange]] = []
        for entry in schedule:
            if len(entry) != 2:
                raise ValueError(f'ClipLengthCurriculumHook: schedule entries are (start_iter, '
                                 f'clip_length), got {entry!r}')
            start, length = int(entry[0]), entry[1]
            lo, hi = as_range(length, f'ClipLengthCurriculumHook: clip_length at {start}')
            self.schedule.append((start, lo if lo == hi else (lo, hi)))
        starts = [s for s, _ in self.schedule]
        if not starts or starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
            raise ValueError(f'ClipLengthCurriculumHook: schedule start iterations must begin at 0 '
                             f'and increase, got {starts}')

    def length_at(self, iteration: int) -> IntOrRange:
        """The clip length of training iteration ``iteration``."""
        return [length for start, length in self.schedule if start <= iteration][-1]

    @staticmethod
    def _sampler(runner):
        loader = runner.train_dataloader
        sampler = getattr(loader.batch_sampler, 'sampler', None)
        for candidate in (sampler, loader.sampler):
            if hasattr(candidate, 'clip_length'):
                return candidate
        raise TypeError(f'ClipLengthCurriculumHook: the training sampler '
                        f'{type(loader.sampler).__name__} has no clip_length; use '
                        'VOSCurriculumSampler or MultiTaskSampler (with batch_sampler=None)')

    def prepare_sampler(self, runner, iteration: int) -> None:
        """Set the sampler's clip length to that of ``iteration`` (also what ``ExactResumeHook``
        calls while it fast-forwards the sampler on resume)."""
        sampler, length = self._sampler(runner), self.length_at(iteration)
        if sampler.clip_length != length:
            sampler.clip_length = length
            print_log(f'ClipLengthCurriculumHook: clip length {length} from iteration {iteration}',
                      logger='current')

    def before_train(self, runner) -> None:
        self.prepare_sampler(runner, runner.iter)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        # this iteration's batch is already fetched: set the length of the next one
        self.prepare_sampler(runner, runner.iter + 1)
