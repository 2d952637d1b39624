"""Several training sources (image and video datasets of different tasks) behind one dataset."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmdet.structures import TrackDataSample
from mmengine.dataset import BaseDataset, ConcatDataset

from seg.datasets.base_video_dataset import BaseVideoSegDataset
from seg.datasets.vos_sampler import ClipIndex
from seg.registry import DATASETS

TASKS = ('panoptic', 'interactive', 'vos')
VOID = 255


@DATASETS.register_module()
class MultiTaskDataset(ConcatDataset):
    """The sources of a (multi-task) training stage, concatenated in the order given.

    Use it with ``MultiTaskSampler``, which draws every batch from ONE source (images and clips do
    not stack into one batch) and alternates the sources by ``ratio``. ``--task-mode`` of
    ``tools/train_fast_sam2.py`` keeps the sources of one task (``select_task``).

    Args:
        sources: ``{name: dict(task=..., ratio=..., dataset=...)}``, in sampling order.
            ``task``: ``'panoptic'`` (no prompts: the object queries), ``'interactive'`` (prompted
            images or clips) or ``'vos'`` (clips with a prompted first frame; the clip-length
            curriculum applies to these); ``ratio`` (> 0): share of the batches drawn from it;
            ``dataset``: a dataset config (or instance).
        classes: the model's class vocabulary (``model.class_names``: things, then stuff). Each
            source's labels (``gt_instances.labels`` and the labels of ``gt_sem_seg``) are
            re-indexed into it by class NAME after its pipeline, so sources with different label
            spaces (COCO, YouTube-VIS, DAVIS's ``'object'``) train one classifier. A source class
            missing from the vocabulary is an error. None: the first source's classes.
        num_thing_classes: with ``classes``: the first ``num_thing_classes`` names are things; a
            source's ``thing_classes`` / ``stuff_classes`` (when its metainfo has them) must land
            on the matching side.
        aliases: ``{source class name: vocabulary name}`` for names that differ between datasets
            but mean the same class (YouTube-VIS ``'sedan'`` is COCO's ``'car'``).
        lazy_init: as ``ConcatDataset``.
    """

    def __init__(self,
                 sources: Dict[str, dict],
                 classes: Optional[Sequence[str]] = None,
                 num_thing_classes: Optional[int] = None,
                 aliases: Optional[Dict[str, str]] = None,
                 lazy_init: bool = False) -> None:
        if not sources:
            raise ValueError('MultiTaskDataset: sources is empty')
        self.source_names: List[str] = list(sources)
        self.source_tasks: List[str] = []
        self.source_ratios: List[float] = []
        datasets = []
        for name, src in sources.items():
            unknown = set(src) - {'task', 'ratio', 'dataset'}
            if unknown or 'dataset' not in src or 'task' not in src:
                raise ValueError(f'MultiTaskDataset: source {name!r} must be dict(task=..., ratio=..., '
                                 f'dataset=...), got keys {sorted(src)}')
            if src['task'] not in TASKS:
                raise ValueError(f'MultiTaskDataset: source {name!r} has task {src["task"]!r}; '
                                 f'choose from {TASKS}')
            ratio = float(src.get('ratio', 1.0))
            if not ratio > 0:
                raise ValueError(f'MultiTaskDataset: source {name!r} needs ratio > 0, got {ratio}')
            self.source_tasks.append(src['task'])
            self.source_ratios.append(ratio)
            ds = src['dataset']
            datasets.append(ds if isinstance(ds, BaseDataset) else DATASETS.build(ds))
        # sources legitimately differ in metainfo (their own classes, palettes): ignore every key
        keys = sorted({k for ds in datasets for k in ds.metainfo})
        super().__init__(datasets, lazy_init=lazy_init, ignore_keys=keys)
        self.classes = tuple(classes) if classes is not None else tuple(datasets[0].metainfo['classes'])
        self.num_thing_classes = num_thing_classes
        self.aliases = dict(aliases or {})
        unknown = sorted(set(self.aliases.values()) - set(self.classes))
        if unknown:
            raise ValueError(f'MultiTaskDataset: aliases map to {unknown}, which are not in `classes`')
        self._luts = [self._label_lut(name, ds) for name, ds in zip(self.source_names, datasets)]
        self._metainfo = dict(classes=self.classes, sources=tuple(self.source_names),
                              tasks=tuple(self.source_tasks))

    @property
    def is_video(self) -> List[bool]:
        """Per source: whether its samples are clips (``TrackDataSample``)."""
        return [isinstance(ds, BaseVideoSegDataset) for ds in self.datasets]

    def _label_lut(self, name: str, dataset: BaseDataset) -> Optional[torch.Tensor]:
        """Source label -> vocabulary label (None: identity)."""
        src_classes = tuple(self.aliases.get(c, c) for c in dataset.metainfo.get('classes', ()))
        missing = [c for c in src_classes if c not in self.classes]
        if missing:
            raise ValueError(f'MultiTaskDataset: classes {missing} of source {name!r} are not in the '
                             f'vocabulary `classes` ({len(self.classes)} names: '
                             f'{list(self.classes[:8])}...); add them to model.class_names')
        if self.num_thing_classes is not None:
            for kind, want_thing in (('thing_classes', True), ('stuff_classes', False)):
                wrong = [c for c in dataset.metainfo.get(kind, ())
                         if (self.classes.index(self.aliases.get(c, c)) < self.num_thing_classes)
                         != want_thing]
                if wrong:
                    raise ValueError(f'MultiTaskDataset: {kind} {wrong} of source {name!r} are on the '
                                     f'other side of num_thing_classes={self.num_thing_classes} in '
                                     'the vocabulary')
        if src_classes == self.classes[:len(src_classes)]:
            return None
        lut = torch.full((VOID + 1, ), VOID, dtype=torch.long)
        lut[:len(src_classes)] = torch.tensor([self.classes.index(c) for c in src_classes])
        return lut

    def source_of(self, idx: int) -> int:
        """Index (into ``source_names``) of the source that dataset index ``idx`` belongs to."""
        return self._get_ori_dataset_idx(int(idx))[0]

    def source_range(self, source: int) -> range:
        """The dataset indices of one source."""
        start = self.cumulative_sizes[source - 1] if source > 0 else 0
        return range(start, self.cumulative_sizes[source])

    def __getitem__(self, idx: Union[int, ClipIndex]) -> dict:
        if not self._fully_initialized:
            self.full_init()
        source, local = self._get_ori_dataset_idx(int(idx))
        clip_length = getattr(idx, 'clip_length', None)  # VOS sources: set by MultiTaskSampler
        data = self.datasets[source][ClipIndex(local, clip_length) if clip_length else local]
        lut = self._luts[source]
        if lut is not None and data is not None:
            sample = data['data_samples']
            frames = sample.video_data_samples if isinstance(sample, TrackDataSample) else [sample]
            for frame in frames:
                if 'gt_instances' in frame and 'labels' in frame.gt_instances:
                    frame.gt_instances.labels = lut[frame.gt_instances.labels.long()]
                if 'gt_sem_seg' in frame:
                    sem = frame.gt_sem_seg.sem_seg
                    frame.gt_sem_seg.sem_seg = lut[sem.long()].to(sem.dtype)
        return data


def select_task(sources: Dict[str, dict], task: str) -> Dict[str, dict]:
    """The sources of one task (``'joint'``: all of them); an error when there is none."""
    if task == 'joint':
        return dict(sources)
    if task not in TASKS:
        raise ValueError(f'unknown task {task!r}; choose from {TASKS + ("joint", )}')
    kept = {name: src for name, src in sources.items() if src['task'] == task}
    if not kept:
        raise ValueError(f'task mode {task!r}: no training source of that task; the sources are '
                         + ', '.join(f'{n} ({s["task"]})' for n, s in sources.items()))
    return kept
