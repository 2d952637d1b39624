"""MultiTaskDataset (sources, task selection, label re-indexing into one vocabulary) and
MultiTaskSampler (one source per batch by ratio, equal clip lengths, DDP shards = one process)."""
from collections import Counter

import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.dataset import BaseDataset
from mmengine.structures import InstanceData, PixelData

from seg.datasets import ClipIndex, MultiTaskDataset, MultiTaskSampler
from seg.datasets.base_video_dataset import BaseVideoSegDataset
from seg.datasets.multi_task_dataset import select_task
from seg.datasets.multi_task_sampler import weighted_round_robin


def _pack(info: dict) -> dict:
    """A packed sample echoing the info: labels = its ``labels``, a semantic map of them."""
    sample = DetDataSample()
    labels = torch.tensor(info['labels'])
    sample.gt_instances = InstanceData(labels=labels)
    sample.gt_sem_seg = PixelData(sem_seg=torch.cat([labels, torch.tensor([255])])[None, None]
                                  .to(torch.uint8))
    if 'video_length' in info:
        track = TrackDataSample()
        track.video_data_samples = [sample]
        sample = track
    return dict(inputs=None, data_samples=sample, info=info)


class Images(BaseDataset):
    METAINFO = dict(classes=('disc', 'box', 'sky'), thing_classes=('disc', 'box'),
                    stuff_classes=('sky', ))

    def __init__(self, n: int = 6, **kwargs) -> None:
        self.n = n
        super().__init__(pipeline=[_pack], serialize_data=False, **kwargs)

    def load_data_list(self):
        return [dict(k=k, labels=[0, 2]) for k in range(self.n)]


class Videos(BaseVideoSegDataset):
    METAINFO = dict(classes=('object', ))

    def __init__(self, lengths=(2, 2, 3, 3, 3), **kwargs) -> None:
        self.lengths = lengths
        super().__init__(pipeline=[lambda info: _pack(dict(info, labels=[0]))],
                         serialize_data=False, **kwargs)

    def load_data_list(self):
        return self.check_videos([dict(video_id=v, video_name=str(v),
                                       images=[dict(frame=t) for t in range(n)])
                                  for v, n in enumerate(self.lengths)], 'fake')


VOCAB = ('disc', 'box', 'object', 'sky')


def _dataset(**ratios) -> MultiTaskDataset:
    ratios = {'images': 2.0, 'clips': 1.0, 'vos': 1.0, **ratios}
    return MultiTaskDataset(
        sources=dict(images=dict(task='panoptic', ratio=ratios['images'], dataset=Images()),
                     clips=dict(task='interactive', ratio=ratios['clips'], dataset=Videos()),
                     vos=dict(task='vos', ratio=ratios['vos'], dataset=Videos((5, 8, 10)))),
        classes=VOCAB, num_thing_classes=3)


def test_labels_are_reindexed_into_the_vocabulary_by_name():
    ds = _dataset()
    assert len(ds) == 6 + 5 + 3 and ds.metainfo['classes'] == VOCAB
    image = ds[0]['data_samples']
    assert image.gt_instances.labels.tolist() == [0, 3]  # sky: 2 -> 3
    assert image.gt_sem_seg.sem_seg.flatten().tolist() == [0, 3, 255]  # void stays void
    assert image.gt_sem_seg.sem_seg.dtype == torch.uint8
    clip = ds[6]['data_samples'].video_data_samples[0]
    assert clip.gt_instances.labels.tolist() == [2]  # DAVIS-style 'object' -> 2
    # a sampler's clip length reaches the video source's pipeline
    assert ds[ClipIndex(12, 4)]['info']['clip_length'] == 4


def test_vocabulary_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"classes \['object'\] of source 'clips' are not in the "
                                         'vocabulary'):
        MultiTaskDataset(sources=dict(images=dict(task='panoptic', dataset=Images()),
                                      clips=dict(task='vos', dataset=Videos())),
                         classes=('disc', 'box', 'sky'))
    with pytest.raises(ValueError, match=r"stuff_classes \['sky'\] of source 'images' are on the "
                                         'other side of num_thing_classes=3'):
        MultiTaskDataset(sources=dict(images=dict(task='panoptic', dataset=Images())),
                         classes=('disc', 'box', 'sky', 'object'), num_thing_classes=3)
    with pytest.raises(ValueError, match="source 'images' has task 'detection'"):
        MultiTaskDataset(sources=dict(images=dict(task='detection', dataset=Images())))
    # aliases: a dataset's name for a vocabulary class
    ds = MultiTaskDataset(sources=dict(images=dict(task='panoptic', dataset=Images())),
                          classes=('disc', 'cube', 'sky'), aliases={'box': 'cube'})
    assert ds[0]['data_samples'].gt_instances.labels.tolist() == [0, 2]


def test_select_task():
    sources = dict(a=dict(task='panoptic'), b=dict(task='vos'), c=dict(task='vos'))
    assert list(select_task(sources, 'vos')) == ['b', 'c']
    assert list(select_task(sources, 'joint')) == ['a', 'b', 'c']
    with pytest.raises(ValueError, match=r"task mode 'interactive': no training source .* "
                                         r'a \(panoptic\), b \(vos\), c \(vos\)'):
        select_task(sources, 'interactive')


def test_weighted_round_robin_spreads_the_ratios():
    picks = weighted_round_robin([2.0, 1.0, 1.0], 8)
    assert picks == [0, 1, 2, 0, 0, 1, 2, 0]
    assert Counter(weighted_round_robin([0.5, 0.25, 0.25], 400)) == {0: 200, 1: 100, 2: 100}


def _groups(sampler):
    indices = list(sampler)
    return [indices[i:i + sampler.batch_size] for i in range(0, len(indices), sampler.batch_size)]


def test_every_batch_comes_from_one_source_with_equal_clip_lengths():
    ds = _dataset()
    sampler = MultiTaskSampler(ds, batch_size=2, clip_length=(4, 6), seed=0)
    groups = _groups(sampler)
    assert len(sampler) == len(groups) * 2 == 14
    sources = [ds.source_of(g[0]) for g in groups]
    assert all(ds.source_of(i) == s for g, s in zip(groups, sources) for i in g)
    assert sources == weighted_round_robin([2.0, 1.0, 1.0], 7) == [0, 1, 2, 0, 0, 1, 2]
    for g, s in zip(groups, sources):
        if s == 1:  # stored clips keep their length: a batch pairs equal lengths
            assert len({ds.datasets[1].get_data_info(i - 6)['video_length'] for i in g}) == 1
            assert not any(isinstance(i, ClipIndex) for i in g)
        if s == 2:  # VOS clips: one drawn length, at most the shortest video of the batch
            lengths = {i.clip_length for i in g}
            shortest = min(ds.datasets[2].get_data_info(i - 11)['video_length'] for i in g)
            assert len(lengths) == 1 and 4 <= lengths.pop() <= min(6, shortest)
    # the curriculum knob applies to the next VOS batch
    sampler.clip_length = 2
    assert {i.clip_length for g in _groups(sampler) for i in g if isinstance(i, ClipIndex)} == {2}


def test_ranks_split_each_global_batch_like_one_process(monkeypatch):
    ds = _dataset()
    single = _groups(MultiTaskSampler(ds, batch_size=2, seed=3))
    ranks = []
    for rank in (0, 1):
        monkeypatch.setattr('mmengine.dataset.sampler.get_dist_info', lambda r=rank: (r, 2))
        ranks.append(list(MultiTaskSampler(ds, batch_size=1, seed=3)))
    assert len(ranks[0]) == len(ranks[1]) == len(single)
    for pair, a, b in zip(single, *ranks):
        assert [int(a), int(b)] == [int(i) for i in pair]
        assert getattr(a, 'clip_length', None) == getattr(pair[0], 'clip_length', None)
    with pytest.raises(TypeError, match='needs a MultiTaskDataset'):
        MultiTaskSampler(Images(), batch_size=1)
