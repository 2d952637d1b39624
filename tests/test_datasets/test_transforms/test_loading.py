"""LoadCocoPanopticAnnotations on the real COCO-panoptic sample and on broken files."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg.datasets.transforms.loading import LoadCocoPanopticAnnotations
from seg.registry import DATASETS
from seg.utils.masks import id2rgb, rgb2id

TINY_META = dict(classes=('person', 'tree-merged'), thing_classes=('person', ),
                 stuff_classes=('tree-merged', ))


def _panoptic_dataset(root: Path, pipeline=(), metainfo=None):
    return DATASETS.build(dict(type='CocoPanopticDataset', data_root=str(root),
                               ann_file='panoptic_examples.json', metainfo=metainfo,
                               data_prefix=dict(img='input_images/', seg='panoptic_examples/'),
                               pipeline=list(pipeline)))


def test_real_sample_all_segments(shared_data):
    root = shared_data / 'coco_panoptic_sample'
    raw = json.loads((root / 'panoptic_examples.json').read_text())
    cats = raw['categories']
    # contiguous labels: things first, then stuff, each in category order
    order = [c['id'] for c in cats if c['isthing']] + [c['id'] for c in cats if not c['isthing']]
    label_of = {cid: i for i, cid in enumerate(order)}
    is_thing = {c['id']: bool(c['isthing']) for c in cats}
    n_things = sum(is_thing.values())
    ds = _panoptic_dataset(root, pipeline=[dict(type='LoadImageFromFile'),
                                           dict(type='LoadCocoPanopticAnnotations')])
    assert len(ds) == 2
    by_file = {a['file_name']: a for a in raw['annotations']}
    for i in range(2):
        res = ds[i]
        ann = by_file[Path(res['seg_map_path']).name]
        png = cv2.imread(res['seg_map_path'])[..., ::-1]
        pan = rgb2id(png)
        seg = res['gt_seg_map']
        assert seg.shape == res['img'].shape[:2]
        things = [s for s in ann['segments_info'] if is_thing[s['category_id']] and not s['iscrowd']]
        assert len(res['gt_masks']) == len(things) == len(res['gt_bboxes'])
        for k, s in enumerate(things):
            mask = res['gt_masks'].masks[k].astype(bool)
            assert mask.sum() == s['area']  # COCO-panoptic area is the pixel count
            assert res['gt_bboxes_labels'][k] == label_of[s['category_id']] < n_things
            x, y, w, h = s['bbox']
            np.testing.assert_allclose(res['gt_bboxes'].tensor[k].numpy(), [x, y, x + w, y + h])
        for s in ann['segments_info']:
            assert (seg[pan == s['id']] == label_of[s['category_id']]).all()
            if not is_thing[s['category_id']]:
                assert label_of[s['category_id']] >= n_things
        assert (seg[pan == 0] == 255).all()
        assert not res['gt_ignore_flags'].any()


def _write_tiny_panoptic(root: Path, png_ids: np.ndarray, segments: list) -> None:
    (root / 'input_images').mkdir(parents=True)
    (root / 'panoptic_examples').mkdir()
    h, w = png_ids.shape
    cv2.imwrite(str(root / 'input_images' / 'a.jpg'), np.full((h, w, 3), 128, np.uint8))
    rgb = id2rgb(png_ids)
    cv2.imwrite(str(root / 'panoptic_examples' / 'a.png'), rgb[..., ::-1])
    cats = [dict(id=1, name='person', isthing=1), dict(id=184, name='tree-merged', isthing=0)]
    anns = [dict(image_id=7, file_name='a.png', segments_info=segments)]
    imgs = [dict(id=7, file_name='a.jpg', height=h, width=w)]
    (root / 'panoptic_examples.json').write_text(json.dumps(
        dict(images=imgs, annotations=anns, categories=cats)))


def _seg(sid, cat, bbox, area):
    return dict(id=sid, category_id=cat, bbox=bbox, area=area, iscrowd=0)


def test_png_ids_missing_from_json_name_the_file(tmp_path):
    ids = np.zeros((8, 8), np.int64)
    ids[:4, :4] = 5
    ids[4:, 4:] = 9  # not listed in the json
    _write_tiny_panoptic(tmp_path, ids, [_seg(5, 1, [0, 0, 4, 4], 16)])
    res = _panoptic_dataset(tmp_path, metainfo=TINY_META).get_data_info(0)
    res['ori_shape'] = (8, 8)
    with pytest.raises(ValueError, match=r'a\.png.*\[9\]'):
        LoadCocoPanopticAnnotations()(res)
    with pytest.warns(UserWarning, match='a.png'):
        out = LoadCocoPanopticAnnotations(on_mismatch='warn')(dict(res))
    assert (out['gt_seg_map'][4:, 4:] == 255).all() and (out['gt_seg_map'][:4, :4] == 0).all()


def test_missing_png_names_the_file(tmp_path):
    ids = np.zeros((8, 8), np.int64)
    ids[2:6, 2:6] = 3
    _write_tiny_panoptic(tmp_path, ids, [_seg(3, 184, [2, 2, 4, 4], 16)])
    (tmp_path / 'panoptic_examples' / 'a.png').unlink()
    res = _panoptic_dataset(tmp_path, metainfo=TINY_META).get_data_info(0)
    res['ori_shape'] = (8, 8)
    with pytest.raises(FileNotFoundError, match='a.png'):
        LoadCocoPanopticAnnotations()(res)


def test_stuff_only_image_has_no_thing_masks(tmp_path):
    ids = np.zeros((8, 8), np.int64)
    ids[2:6, 2:6] = 3
    _write_tiny_panoptic(tmp_path, ids, [_seg(3, 184, [2, 2, 4, 4], 16)])
    res = _panoptic_dataset(tmp_path, metainfo=TINY_META,
                            pipeline=[dict(type='LoadImageFromFile'),
                                      dict(type='LoadCocoPanopticAnnotations')])[0]
    assert len(res['gt_masks']) == 0 and len(res['gt_bboxes']) == 0
    # one thing class, so the only stuff class gets label 1
    assert (res['gt_seg_map'] == 1).sum() == 16
    assert (res['gt_seg_map'] == 255).sum() == 64 - 16


# ---- LoadVideoFrameAnnotations ----------------------------------------------------------------
from PIL import Image  # noqa: E402
from pycocotools import mask as mask_utils  # noqa: E402

from seg.datasets.toy_dataset import uncompressed_rle  # noqa: E402
from seg.datasets.transforms.loading import LoadVideoFrameAnnotations, read_davis_objects  # noqa: E402
from seg.evaluation.davis import davis_palette  # noqa: E402


def _palette_png(path: Path, ids: np.ndarray) -> str:
    png = Image.fromarray(ids.astype(np.uint8), mode='P')
    png.putpalette(davis_palette())  # without a palette PIL would renumber the indices on save
    png.save(path)
    return str(path)


def test_video_frame_from_palette_png(tmp_path):
    ids = np.zeros((6, 8), np.uint8)
    ids[1:3, 1:4] = 2
    ids[4:6, 5:8] = 5
    ids[0, :] = 255  # void
    res = LoadVideoFrameAnnotations()(dict(seg_map_path=_palette_png(tmp_path / 'a.png', ids),
                                           mask_format='palette', ori_shape=(6, 8)))
    assert res['gt_instances_ids'].tolist() == [2, 5]
    assert res['gt_bboxes'].tensor.tolist() == [[1, 1, 4, 3], [5, 4, 8, 6]]
    assert res['gt_bboxes_labels'].tolist() == [0, 0] and not res['gt_ignore_flags'].any()
    assert np.array_equal(res['gt_masks'].masks[1].astype(bool), ids == 5)
    assert np.array_equal(res['gt_seg_map'] == 255, ids == 255) and res['gt_seg_map'].max() == 255


def test_video_frame_from_binary_png_and_empty_frame(tmp_path):
    ids = np.zeros((4, 4), np.uint8)
    ids[1:3, 1:3] = 255
    Image.fromarray(ids, mode='L').save(tmp_path / 'b.png')
    found, masks, void = read_davis_objects(str(tmp_path / 'b.png'), 'binary')
    assert found == [1] and masks.sum() == 4 and not void.any()
    Image.fromarray(np.zeros((4, 4), np.uint8), mode='L').save(tmp_path / 'c.png')
    res = LoadVideoFrameAnnotations()(dict(seg_map_path=str(tmp_path / 'c.png'),
                                           mask_format='binary'))
    assert len(res['gt_masks']) == 0 and res['gt_bboxes'].tensor.shape == (0, 4)
    with pytest.raises(ValueError, match='mask_format'):
        read_davis_objects(str(tmp_path / 'c.png'), 'rgb')
    with pytest.raises(FileNotFoundError, match='nope.png'):
        read_davis_objects(str(tmp_path / 'nope.png'), 'binary')


def test_video_frame_from_rle_instances():
    a = np.zeros((5, 7), bool)
    a[1:4, 2:5] = True
    b = np.zeros((5, 7), bool)
    b[0, 6] = True
    compressed = mask_utils.encode(np.asfortranarray(b.astype(np.uint8)))
    instances = [dict(instance_id=11, bbox_label=2, mask=uncompressed_rle(a)),
                 dict(instance_id=12, bbox_label=0, mask=compressed, ignore_flag=1),
                 dict(instance_id=13, bbox_label=1, mask=uncompressed_rle(np.zeros((5, 7), bool)))]
    res = LoadVideoFrameAnnotations()(dict(instances=instances, height=5, width=7))
    assert res['gt_instances_ids'].tolist() == [11, 12]  # the empty one is dropped
    assert res['gt_bboxes_labels'].tolist() == [2, 0]
    assert res['gt_ignore_flags'].tolist() == [False, True]
    assert np.array_equal(res['gt_masks'].masks[0].astype(bool), a)
    assert res['gt_bboxes'].tensor.tolist() == [[2, 1, 5, 4], [6, 0, 7, 1]]


def test_video_frame_size_mismatch_names_the_file(tmp_path):
    path = _palette_png(tmp_path / 'd.png', np.ones((4, 4)))
    with pytest.raises(ValueError, match=r'd\.png is 4x4 but the image is 8x6'):
        LoadVideoFrameAnnotations()(dict(seg_map_path=path, mask_format='palette', ori_shape=(6, 8)))
