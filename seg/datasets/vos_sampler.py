"""A video sampler whose clip length a training hook can change while training runs (curriculum).

The sampler runs in the main process and hands each index to the dataloader, so a change of
``clip_length`` reaches the very next index it yields, whatever the number of workers (with
workers, the few batches already prefetched keep their old length). Each yielded index is a
``ClipIndex``: a plain ``int`` (so mmengine's datasets, refetching and collation treat it as
usual) that also carries the clip length; ``BaseVideoSegDataset`` passes it to the pipeline as
``results['clip_length']`` for ``SampleVideoClip``.
"""
from typing import Iterator, Optional, Sized

import numpy as np
from mmengine.dataset import DefaultSampler

from seg.datasets.clip_sampling import IntOrRange, as_range, draw_from_range
from seg.registry import DATA_SAMPLERS


class ClipIndex(int):
    """A dataset index carrying the number of frames the clip should have."""
    clip_length: int

    def __new__(cls, index: int, clip_length: int) -> 'ClipIndex':
        obj = super().__new__(cls, index)
        obj.clip_length = int(clip_length)
        return obj

    def __reduce__(self):
        # workers receive indices pickled; keep the clip length across the process boundary
        return ClipIndex, (int(self), self.clip_length)

    def __repr__(self) -> str:
        return f'ClipIndex({int(self)}, clip_length={self.clip_length})'


@DATA_SAMPLERS.register_module()
class VOSCurriculumSampler(DefaultSampler):
    """mmengine's ``DefaultSampler`` (shuffle, distributed split, round up) with a clip length.

    Args:
        clip_length: frames per clip, an int or an inclusive ``(min, max)`` range drawn per
            group of ``batch_size`` consecutive indices (so a batch shares one length and its
            clips stack). Change it during training through the ``clip_length`` property,
            e.g. ``(4, 6)`` early and ``(12, 16)`` later.
        batch_size: the dataloader's batch size (per GPU).
        dataset, shuffle, seed, round_up: as ``DefaultSampler``.
    """

    def __init__(self,
                 dataset: Sized,
                 clip_length: IntOrRange = (4, 6),
                 batch_size: int = 1,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 round_up: bool = True) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed, round_up=round_up)
        if batch_size < 1:
            raise ValueError(f'VOSCurriculumSampler: batch_size must be >= 1, got {batch_size}')
        self.batch_size = batch_size
        self.clip_length = clip_length

    @property
    def clip_length(self) -> IntOrRange:
        """Frames per clip (int or inclusive range); setting it affects the next yielded index."""
        return self._clip_length

    @clip_length.setter
    def clip_length(self, value: IntOrRange) -> None:
        lo, hi = as_range(value, 'VOSCurriculumSampler.clip_length')
        self._clip_length = lo if lo == hi else (lo, hi)

    def __iter__(self) -> Iterator[ClipIndex]:
        indices = list(super().__iter__())
        rng = np.random.default_rng([self.seed, self.epoch, self.rank])
        length = 0
        for i, index in enumerate(indices):
            if i % self.batch_size == 0:
                # read the property now, not at epoch start, so a hook's change applies at once
                length = draw_from_range(self._clip_length, rng, 'clip_length')
            yield ClipIndex(index, length)
