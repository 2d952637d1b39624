"""CocoPanopticSegDataset + LoadCocoPanopticAnnotations on the toy COCO-panoptic data."""
import json

import numpy as np
import pytest

from seg.datasets.toy_dataset import CATEGORY_IDS, PANOPTIC_METAINFO, THING_CLASSES
from seg.registry import DATASETS

LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadCocoPanopticAnnotations')]


def _coco(root, ann_file='annotations/panoptic_train2017.json', **kwargs):
    kwargs.setdefault('metainfo', PANOPTIC_METAINFO)
    return DATASETS.build(dict(type='CocoPanopticSegDataset', data_root=str(root), ann_file=ann_file,
                               data_prefix=dict(img='train2017/', seg='annotations/panoptic_train2017/'),
                               pipeline=LOAD, **kwargs))


def test_round_trip(toy):
    ds = _coco(toy.coco_root)
    label = {CATEGORY_IDS[n]: i for i, n in enumerate(PANOPTIC_METAINFO['classes'])}
    truth = toy.coco['train2017']
    assert len(ds) == len(truth) == 8
    for i in range(len(ds)):
        res = ds[i]
        segments = truth[res['seg_map_path'].split('/')[-1]]
        things = [(cid, m) for cid, m in segments.values() if label[cid] < len(THING_CLASSES)]
        assert len(res['gt_masks']) == len(things)
        for k, (cid, m) in enumerate(things):
            assert np.array_equal(res['gt_masks'].masks[k].astype(bool), m)
            assert res['gt_bboxes_labels'][k] == label[cid]
        expected = np.full(m.shape, 255)
        for cid, m in segments.values():
            expected[m] = label[cid]
        assert np.array_equal(res['gt_seg_map'], expected)
        assert (res['gt_seg_map'] == 255).sum() > 0  # the toy leaves some pixels unlabeled


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return str(path)


def test_empty_annotation_list(toy, tmp_path):
    raw = json.loads((toy.coco_root / 'annotations' / 'panoptic_train2017.json').read_text())
    ann = _write(tmp_path / 'empty.json', dict(raw, annotations=[]))
    with pytest.raises(ValueError, match='empty.json: the annotation list is empty'):
        _coco(toy.coco_root, ann)
    assert len(_coco(toy.coco_root, ann, test_mode=True)) == 8


def test_categories_not_in_metainfo(toy):
    with pytest.raises(ValueError, match=r'category id \d+, which is not among'):
        _coco(toy.coco_root, metainfo=None)  # the default 133 COCO classes


def test_missing_image_names_the_file(toy, tmp_path):
    raw = json.loads((toy.coco_root / 'annotations' / 'panoptic_train2017.json').read_text())
    raw['images'][0]['file_name'] = 'gone.jpg'
    raw['annotations'][0]['file_name'] = 'gone.png'
    with pytest.raises(FileNotFoundError, match='a.json: 1 file.* missing, e.g. .*gone.jpg'):
        _coco(toy.coco_root, _write(tmp_path / 'a.json', raw))  # when built, not at ds[0]


def test_instances_json_loads_with_mmdet(toy):
    """The toy COCO instances json (RLE masks) works with mmdet's CocoDataset."""
    ds = DATASETS.build(dict(type='CocoDataset', data_root=str(toy.coco_root),
                             ann_file='annotations/instances_val2017.json',
                             metainfo=dict(classes=THING_CLASSES), data_prefix=dict(img='val2017/'),
                             pipeline=[dict(type='LoadImageFromFile'),
                                       dict(type='LoadAnnotations', with_mask=True)]))
    truth = toy.coco['val2017']
    assert len(ds) == len(truth) > 0
    compared = 0
    for i in range(len(ds)):
        res = ds[i]
        segs = truth[res['img_path'].split('/')[-1].replace('.jpg', '.png')]
        things = [m for cid, m in segs.values() if cid in [CATEGORY_IDS[n] for n in THING_CLASSES]]
        assert len(res['gt_masks']) == len(things)
        for k, m in enumerate(things):
            assert np.array_equal(res['gt_masks'].masks[k].astype(bool), m)
            compared += 1
    assert compared >= len(ds)  # every toy image has at least one thing
