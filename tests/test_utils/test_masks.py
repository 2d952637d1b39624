"""seg/utils/masks.py: the one home of mask -> box, panoptic RGB <-> id and DAVIS index PNG reading."""
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from seg.utils.masks import id2rgb, mask_to_box, read_davis_png, rgb2id


def test_mask_to_box_is_exclusive_on_the_right_like_coco():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:7] = True
    mask[8, 10] = True
    box = mask_to_box(mask)
    assert box.dtype == np.float32 and box.tolist() == [3, 2, 11, 9]
    x, y, w, h = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8))))
    assert box.tolist() == [x, y, x + w, y + h]  # COCO's x2 = x1 + width
    with pytest.raises(ValueError, match='3x3 mask is empty'):
        mask_to_box(np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match=r'\[H, W\] mask, got shape \(2, 3, 3\)'):
        mask_to_box(np.ones((2, 3, 3), bool))


def test_rgb_id_hand_values_and_round_trip():
    png = np.array([[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [3, 2, 1]]], dtype=np.uint8)
    assert rgb2id(png).tolist() == [[1, 256], [65536, 3 + 512 + 65536]]
    ids = np.array([[0, 1, 256, 65536 + 7], [3937500, 16777215, 5, 6]])
    assert rgb2id(id2rgb(ids)).tolist() == ids.tolist()
    with pytest.raises(ValueError, match='RGB|H, W, 3'):
        rgb2id(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match='0..16777215'):
        id2rgb(np.array([[256 ** 3]]))


def test_read_davis_png_keeps_palette_indices(tmp_path):
    ids = np.array([[0, 1, 2], [255, 7, 0]], np.uint8)
    png = Image.fromarray(ids, mode='P')
    png.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])  # colours differ from ids
    png.save(tmp_path / 'a.png')
    got = read_davis_png(tmp_path / 'a.png')
    assert got.dtype == np.int64 and got.tolist() == ids.tolist()
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / 'rgb.png')
    with pytest.raises(ValueError, match='rgb.png.*single-channel'):
        read_davis_png(tmp_path / 'rgb.png')
    with pytest.raises(FileNotFoundError, match='nope.png'):
        read_davis_png(tmp_path / 'nope.png')
