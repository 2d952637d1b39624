"""Task-alternating sampling: every batch from one source of a ``MultiTaskDataset``, by ratio."""
import itertools
from typing import Dict, Iterator, List, Optional, Sized

import numpy as np

from seg.datasets.clip_sampling import IntOrRange, draw_from_range
from seg.datasets.multi_task_dataset import MultiTaskDataset
from seg.datasets.vos_sampler import ClipIndex, VOSCurriculumSampler
from seg.registry import DATA_SAMPLERS


def weighted_round_robin(ratios: List[float], num: int) -> List[int]:
    """``num`` picks among ``len(ratios)`` items, item i in proportion to ``ratios[i]``, spread as
    evenly as possible (smooth weighted round robin: each step every item gains its ratio, the
    richest is picked and pays the total). Deterministic, so every rank draws the same order."""
    total = float(sum(ratios))
    credit = [0.0] * len(ratios)
    picks = []
    for _ in range(num):
        credit = [c + r for c, r in zip(credit, ratios)]
        best = max(range(len(ratios)), key=lambda i: (credit[i], -i))
        credit[best] -= total
        picks.append(best)
    return picks


@DATA_SAMPLERS.register_module()
class MultiTaskSampler(VOSCurriculumSampler):
    """Alternating task batches for a ``MultiTaskDataset`` (the multi-task balancing of the stages).

    Global batch ``g`` (the ``batch_size * world_size`` samples one optimizer step sees) comes from
    one source, chosen by ``weighted_round_robin`` over the sources' ratios; every rank yields its
    ``batch_size`` slice of it, so a batch never mixes images and clips, all ranks run the same
    task in a step (DDP reduces like gradients), and the union of the ranks' slices is exactly what
    one process with the whole batch would draw. Within a source, samples follow a permutation per
    pass (``seed``, epoch, source, pass; reshuffled when the source runs out).

    Clips of one batch must have the same length (they stack into ``[B, T, 3, H, W]``).
    ``'vos'`` sources get ``ClipIndex`` indices carrying ``clip_length``, drawn once per global
    batch (all ranks agree; shortened to the batch's shortest video); it is the curriculum knob a
    hook changes during training (see ``VOSCurriculumSampler``). Other video sources (stored
    interactive clips) keep their own length: their batches gather clips of equal length.

    An epoch has ``ceil(len(dataset) / (batch_size * world_size))`` global batches. Use it with
    ``batch_sampler=None`` (the dataloader's plain batching keeps the groups).

    Args:
        dataset: a ``MultiTaskDataset``.
        batch_size: the dataloader's batch size (per rank).
        clip_length: frames per ``'vos'`` clip, int or inclusive ``(min, max)`` range.
        shuffle, seed, round_up: as ``DefaultSampler`` (``round_up`` is implied: batches are full).
    """

    def __init__(self,
                 dataset: Sized,
                 batch_size: int = 1,
                 clip_length: IntOrRange = (4, 6),
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 round_up: bool = True) -> None:
        if not isinstance(dataset, MultiTaskDataset):
            raise TypeError(f'MultiTaskSampler needs a MultiTaskDataset, got {type(dataset).__name__}; '
                            'wrap the training sources in dict(type=MultiTaskDataset, sources=...)')
        super().__init__(dataset, clip_length=clip_length, batch_size=batch_size, shuffle=shuffle,
                         seed=seed, round_up=round_up)
        self.global_batch = self.batch_size * self.world_size
        self.num_batches = -(-len(dataset) // self.global_batch)
        self._lengths: Dict[int, Dict[int, int]] = {}

    def _source_stream(self, source: int) -> Iterator[int]:
        """Dataset indices of one source, pass after pass."""
        indices = np.asarray(self.dataset.source_range(source))
        for p in itertools.count():
            if self.shuffle:
                rng = np.random.default_rng([self.seed, self.epoch, source, p])
                yield from indices[rng.permutation(len(indices))].tolist()
            else:
                yield from indices.tolist()

    def _source_batches(self, source: int, rng: np.random.Generator) -> Iterator[List[int]]:
        """Global batches of one source: images as they come; clips of equal length (clips of
        different lengths do not stack)."""
        ds: MultiTaskDataset = self.dataset
        stream, size = self._source_stream(source), self.global_batch
        if not ds.is_video[source]:
            while True:
                yield [next(stream) for _ in range(size)]
        lengths = self._video_lengths(source)
        if ds.source_tasks[source] == 'vos':
            while True:
                batch = [next(stream) for _ in range(size)]
                # read the property now, not at epoch start, so a hook's change applies at once;
                # a video shorter than the drawn length shortens the batch's clips
                length = min(draw_from_range(self._clip_length, rng, 'clip_length'),
                             *(lengths[i] for i in batch))
                yield [ClipIndex(i, length) for i in batch]
        # stored clips keep their own length: batch clips of the same length together
        pending: Dict[int, List[int]] = {}
        while True:
            i = next(stream)
            bucket = pending.setdefault(lengths[i], [])
            bucket.append(i)
            if len(bucket) == size:
                yield pending.pop(lengths[i])

    def _video_lengths(self, source: int) -> Dict[int, int]:
        """Frames of every video (or stored clip) of a video source, by dataset index."""
        ds: MultiTaskDataset = self.dataset
        if source not in self._lengths:
            offset, dataset = ds.source_range(source).start, ds.datasets[source]
            self._lengths[source] = {offset + k: dataset.get_data_info(k)['video_length']
                                     for k in range(len(dataset))}
        return self._lengths[source]

    def __iter__(self) -> Iterator[int]:
        ds: MultiTaskDataset = self.dataset
        rng = np.random.default_rng([self.seed, self.epoch])
        batches = [self._source_batches(s, rng) for s in range(len(ds.source_names))]
        mine = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        for source in weighted_round_robin(ds.source_ratios, self.num_batches):
            yield from next(batches[source])[mine]

    def __len__(self) -> int:
        return self.num_batches * self.batch_size
