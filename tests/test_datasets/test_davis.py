"""DAVISDataset: the real 2016 / 2017 samples, the toy round trip, index files, bad data."""
import shutil

import numpy as np
import pytest
from PIL import Image

from seg.registry import DATASETS

LOAD = [dict(type='SampleVideoClip', clip_length=None),
        dict(type='TransformBroadcaster', share_random_params=True,
             transforms=[dict(type='LoadImageFromFile'), dict(type='LoadVideoFrameAnnotations')]),
        dict(type='PackSegTrackInputs')]


def _davis(root, **kwargs):
    kwargs.setdefault('pipeline', LOAD)
    return DATASETS.build(dict(type='DAVISDataset', data_root=str(root), **kwargs))


def test_davis2016_binary_masks_are_object_1(shared_data):
    ds = _davis(shared_data / 'davis2016', year='2016', split=None, pipeline=[])
    assert len(ds) == 10
    info = next(ds.get_data_info(i) for i in range(len(ds))
                if ds.get_data_info(i)['video_name'] == 'dog')
    assert info['video_length'] == 60 and info['images'][0]['mask_format'] == 'binary'
    assert [f['frame_id'] for f in info['images']] == list(range(60))
    img_ids = [f['img_id'] for i in range(len(ds)) for f in ds.get_data_info(i)['images']]
    assert len(set(img_ids)) == len(img_ids) == 775
    # load two frames of 'dog' and compare with the raw PNGs
    ds = _davis(shared_data / 'davis2016', year='2016', split=None,
                pipeline=[dict(type='SampleVideoClip', clip_length=2),
                          dict(type='TransformBroadcaster', share_random_params=True,
                               transforms=[dict(type='LoadImageFromFile'),
                                           dict(type='LoadVideoFrameAnnotations')]),
                          dict(type='PackSegTrackInputs')])
    names = [ds.get_data_info(i)['video_name'] for i in range(len(ds))]
    track = ds[names.index('dog')]['data_samples']
    for frame in track.video_data_samples:
        raw = np.array(Image.open(frame.img_path.replace('JPEGImages', 'Annotations')
                                  .replace('.jpg', '.png')))
        gt = frame.gt_instances
        assert gt.instances_ids.tolist() == [1] and gt.labels.tolist() == [0]
        assert np.array_equal(gt.masks.masks[0].astype(bool), raw == 255)
        assert not frame.ignore_mask.data.any()
        assert frame.video_length == 2 and frame.ori_shape == (480, 854)


def test_davis2017_tennis_two_objects_and_void(shared_data):
    ds = _davis(shared_data / 'davis2017_sample', year='2017', split=None)
    names = [ds.get_data_info(i)['video_name'] for i in range(len(ds))]
    assert names == ['bear', 'tennis']
    track = ds[1]['data_samples']
    assert len(track.video_data_samples) == 2
    for frame in track.video_data_samples:
        raw = np.array(Image.open(frame.img_path.replace('JPEGImages', 'Annotations')
                                  .replace('.jpg', '.png')))
        gt = frame.gt_instances
        assert gt.instances_ids.tolist() == [1, 2]  # 255 (void) is not an object
        for k, oid in enumerate([1, 2]):
            assert np.array_equal(gt.masks.masks[k].astype(bool), raw == oid)
            ys, xs = np.nonzero(raw == oid)
            assert gt.bboxes[k].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert np.array_equal(frame.ignore_mask.data[0].numpy(), raw == 255)
        assert frame.ignore_mask.data.sum() > 0
    bear = ds[0]['data_samples'].video_data_samples[0]
    assert bear.gt_instances.instances_ids.tolist() == [1] and not bear.ignore_mask.data.any()


def test_toy_round_trip_and_splits(toy):
    ds = _davis(toy.davis_root, year='2017', split='train')
    val = _davis(toy.davis_root, year='2017', split='val')
    names = [ds.get_data_info(i)['video_name'] for i in range(len(ds))]
    assert names == sorted(toy.davis)[:2] and len(val) == 1
    for i, name in enumerate(names):
        frames = ds[i]['data_samples'].video_data_samples
        assert len(frames) == len(toy.davis[name])
        for frame, (objects, void) in zip(frames, toy.davis[name]):
            gt = frame.gt_instances
            assert gt.instances_ids.tolist() == sorted(objects)
            for k, oid in enumerate(gt.instances_ids.tolist()):
                assert np.array_equal(gt.masks.masks[k].astype(bool), objects[oid])
            assert np.array_equal(frame.ignore_mask.data[0].numpy(), void)


def _copy_davis(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_sequence_with_zero_frames(toy, tmp_path):
    root = _copy_davis(toy.davis_root, tmp_path / 'd')
    empty = root / 'JPEGImages' / '480p' / 'toy-seq0'
    for f in empty.iterdir():
        f.unlink()
    with pytest.raises(ValueError, match='toy-seq0.*no frames|no frames.*toy-seq0'):
        _davis(root, split='train')
    with pytest.warns(UserWarning, match='toy-seq0'):
        ds = _davis(root, split='train', on_bad_data='skip')
    assert [ds.get_data_info(i)['video_name'] for i in range(len(ds))] == ['toy-seq1']


def test_missing_annotation_and_missing_sequence(toy, tmp_path):
    root = _copy_davis(toy.davis_root, tmp_path / 'd')
    (root / 'Annotations' / '480p' / 'toy-seq1' / '00003.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'toy-seq1/00003\.png'):
        _davis(root, split='train')
    # evaluation only needs the first frame's annotation
    assert len(_davis(root, split='train', test_mode=True)) == 2
    (root / 'ImageSets' / '2017' / 'train.txt').write_text('toy-seq0\nno-such-seq\n')
    with pytest.raises(FileNotFoundError, match='no-such-seq'):
        _davis(root, split='train')
    with pytest.raises(FileNotFoundError, match=r'ImageSets/2017/test\.txt'):
        _davis(root, split='test')


def test_bad_mask_values_name_the_png(toy, tmp_path):
    root = _copy_davis(toy.davis_root, tmp_path / 'd')
    png = root / 'Annotations' / '480p' / 'toy-seq0' / '00000.png'
    Image.fromarray(np.full((128, 224), 7, np.uint8), mode='L').save(png)
    ds = _davis(root, year='2016', split=None)  # read as DAVIS 2016: binary required
    with pytest.raises(ValueError, match=r'00000\.png.*only 0 and 255'):
        ds[0]


def test_year_is_checked():
    with pytest.raises(ValueError, match='year'):
        DATASETS.build(dict(type='DAVISDataset', data_root='/nonexistent', year='2019'))


def test_sequence_list_selects_and_orders(shared_data, toy, tmp_path):
    ds = _davis(shared_data / 'davis2016', year='2016', split=None, pipeline=[],
                sequences=['goat', 'camel'])
    assert [ds.get_data_info(i)['video_name'] for i in range(len(ds))] == ['goat', 'camel']
    with pytest.raises(ValueError, match='either split'):
        _davis(shared_data / 'davis2016', year='2016', split='train', sequences=['goat'])
    with pytest.raises(ValueError, match='non-empty list'):
        _davis(shared_data / 'davis2016', year='2016', split=None, sequences='goat')
    with pytest.raises(FileNotFoundError, match='no-such-seq'):
        _davis(shared_data / 'davis2016', year='2016', split=None, sequences=['no-such-seq'])
    # an index file is filtered to the listed sequences
    from seg.datasets.converters.davis_index import davis_to_index
    index = tmp_path / 'index.json'
    davis_to_index(str(toy.davis_root), str(index), year='2017', split='train')
    ds = _davis(toy.davis_root, split=None, ann_file=str(index), sequences=['toy-seq1'])
    assert [ds.get_data_info(i)['video_name'] for i in range(len(ds))] == ['toy-seq1']
    with pytest.raises(KeyError, match='toy-seq2'):
        _davis(toy.davis_root, split=None, ann_file=str(index), sequences=['toy-seq2'])
