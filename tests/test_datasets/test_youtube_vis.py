"""YouTubeVIS2019Dataset on the toy YouTube-VIS json: round trip, clip sampling, bad data."""
import json

import numpy as np
import pytest

from seg.datasets import ClipIndex
from seg.datasets.toy_dataset import VIS_METAINFO
from seg.registry import DATASETS


def _pipeline(clip_length=None):
    return [dict(type='SampleVideoClip', clip_length=clip_length),
            dict(type='TransformBroadcaster', share_random_params=True,
                 transforms=[dict(type='LoadImageFromFile'), dict(type='LoadVideoFrameAnnotations')]),
            dict(type='PackSegTrackInputs')]


def _ytvis(root, ann_file='train.json', **kwargs):
    kwargs.setdefault('pipeline', _pipeline())
    kwargs.setdefault('metainfo', VIS_METAINFO)
    return DATASETS.build(dict(type='YouTubeVIS2019Dataset', data_root=str(root), ann_file=ann_file,
                               data_prefix=dict(img='train/JPEGImages/'), **kwargs))


def test_round_trip_masks_ids_and_labels(toy):
    ds = _ytvis(toy.ytvis_root)
    raw = json.loads((toy.ytvis_root / 'train.json').read_text())
    cat_label = {c['id']: VIS_METAINFO['classes'].index(c['name']) for c in raw['categories']}
    ann_label = {a['id']: cat_label[a['category_id']] for a in raw['annotations']}
    assert len(ds) == len(toy.ytvis)
    for i in range(len(ds)):
        track = ds[i]['data_samples']
        name = ds.get_data_info(i)['video_name']
        truth = toy.ytvis[name]
        assert len(track.video_data_samples) == len(truth)
        for t, (frame, objects) in enumerate(zip(track.video_data_samples, truth)):
            gt = frame.gt_instances
            assert gt.instances_ids.tolist() == sorted(objects)
            assert gt.labels.tolist() == [ann_label[a] for a in sorted(objects)]
            for k, aid in enumerate(sorted(objects)):
                assert np.array_equal(gt.masks.masks[k].astype(bool), objects[aid])
            assert frame.frame_id == t and frame.video_length == len(truth)
            assert not frame.ignore_mask.data.any()


def test_frame_instances_carry_the_xyxy_box_the_metric_reads(toy):
    """The YouTube-VIS metric formats the ground truth from ``instances[*]['bbox']`` (xyxy)."""
    ds = _ytvis(toy.ytvis_root)
    for frame, objects in zip(ds.get_data_info(0)['images'], toy.ytvis[ds.get_data_info(0)['video_name']]):
        assert sorted(i['instance_id'] for i in frame['instances']) == sorted(objects)
        for inst in frame['instances']:
            ys, xs = np.nonzero(objects[inst['instance_id']])
            assert inst['bbox'] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_objects_come_and_go(toy):
    """The toy videos have late entries and early exits: ids differ between frames."""
    changes = [len({frozenset(f) for f in frames}) > 1 for frames in toy.ytvis.values()]
    assert all(changes)


def test_clip_length_from_the_sampler_index(toy):
    ds = _ytvis(toy.ytvis_root, pipeline=_pipeline(clip_length=(8, 8)))
    np.random.seed(0)
    assert len(ds[0]['data_samples'].video_data_samples) == 8
    frames = ds[ClipIndex(0, 3)]['data_samples'].video_data_samples
    ids = [f.frame_id for f in frames]
    assert len(ids) == 3 and ids == list(range(ids[0], ids[0] + 3))


def _write(path, data):
    path.write_text(json.dumps(data))
    return path.name


def test_bad_annotation_files(toy, tmp_path):
    raw = json.loads((toy.ytvis_root / 'train.json').read_text())
    (tmp_path / 'train').symlink_to(toy.ytvis_root / 'train')
    empty = _write(tmp_path / 'empty.json', dict(raw, annotations=[]))
    with pytest.raises(ValueError, match='empty.json.*annotation list is empty'):
        _ytvis(tmp_path, empty)
    assert len(_ytvis(tmp_path, empty, test_mode=True)) == len(raw['videos'])

    short = json.loads(json.dumps(raw))
    short['annotations'][0]['segmentations'] = short['annotations'][0]['segmentations'][:-1]
    name = _write(tmp_path / 'short.json', short)
    aid = short['annotations'][0]['id']
    with pytest.raises(ValueError, match=f'short.json: annotation {aid} .* segmentations for'):
        _ytvis(tmp_path, name)
    with pytest.warns(UserWarning, match=f'annotation {aid}'):
        assert len(_ytvis(tmp_path, name, on_bad_data='skip')) == len(raw['videos']) - 1

    no_frames = json.loads(json.dumps(raw))
    no_frames['videos'][1]['file_names'] = []
    for a in no_frames['annotations']:
        if a['video_id'] == no_frames['videos'][1]['id']:
            a['segmentations'] = []
    name = _write(tmp_path / 'noframes.json', no_frames)
    with pytest.raises(ValueError, match='noframes.json.*no frames'):
        _ytvis(tmp_path, name)

    with pytest.raises(ValueError, match=r"categories \['box', 'disc', 'triangle'\] are not in"):
        _ytvis(tmp_path, 'short.json', metainfo=None)
    with pytest.raises(FileNotFoundError, match='missing.json'):
        _ytvis(tmp_path, 'missing.json')


def test_missing_frame_image_names_the_file(toy, tmp_path):
    raw = json.loads((toy.ytvis_root / 'train.json').read_text())
    raw['videos'][0]['file_names'][0] = 'toy0000/99999.jpg'
    (tmp_path / 'train').symlink_to(toy.ytvis_root / 'train')
    with pytest.raises(FileNotFoundError, match="a.json video 'toy0000': 1 file.* missing, e.g. .*99999.jpg"):
        _ytvis(tmp_path, _write(tmp_path / 'a.json', raw))  # when built, not at ds[0]
