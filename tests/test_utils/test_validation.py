"""seg.utils.validation: every bad input gets a clear error, the documented clipping happens."""
import json

import mmcv
import numpy as np
import pytest
import torch
from PIL import Image

from seg.utils.atomic_io import atomic_write_json
from seg.utils.validation import (
    check_boxes,
    check_image,
    check_int,
    check_mask,
    check_out_path,
    check_points,
    check_xywh_box,
    cli_input_errors,
    load_json_file,
    read_image_file,
    require_list,
)

HW = (100, 200)  # H, W

BAD_IMAGES = [
    ('not an array', TypeError, 'must be an RGB uint8 array'),
    (torch.zeros(4, 4, 3, dtype=torch.uint8), TypeError, 'torch.Tensor'),
    (np.zeros((4, 4, 3), np.float32), ValueError, 'uint8'),
    (np.full((4, 4, 3), np.nan, np.float32), ValueError, 'NaN / inf'),
    (np.zeros((4, 4), np.uint8), ValueError, 'grey image'),
    (np.zeros((4, 4, 4), np.uint8), ValueError, r'\[H, W, 3\]'),
    (np.zeros((0, 4, 3), np.uint8), ValueError, 'empty image'),
    (np.zeros((20, 20, 3), np.uint8), ValueError, 'above the cap of 100 input pixels'),
]


@pytest.mark.parametrize('image,error,match', BAD_IMAGES)
def test_bad_images(image, error, match):
    with pytest.raises(error, match=match):
        check_image(image, 'img', max_pixels=100)


BAD_POINTS = [
    ([[np.nan, 1]], [1], 'non-finite'),
    ([[np.inf, 1]], [1], 'non-finite'),
    ([[1, 2, 3]], [1], r'\[N, 2\]'),
    ([[1, 2]], [0.5], 'integers'),
    ([[1, 2]], [True], 'must hold numbers'),
    ([[1, 2]], ['1'], 'must hold numbers'),
    ([[1, 2]], [2], r'got \[2\]'),
    ([[1, 2], [3, 4]], [1], 'one label per point'),
    ([[1, 2]], None, 'without point_labels'),
    (np.zeros((0, 2)), np.zeros(0), 'no point'),
    ([[250, 10]], [1], 'lies outside the image'),
    ([[10, -30]], [1], 'lies outside the image'),
    ([[1, 2], [3]], [1, 1], 'rectangular'),
]


@pytest.mark.parametrize('coords,labels,match', BAD_POINTS)
def test_bad_points(coords, labels, match):
    with pytest.raises(ValueError, match=match):
        check_points(coords, labels, HW)


def test_points_just_outside_are_clipped_padding_is_not_checked():
    pts, labels = check_points([[201.5, -1.0], [-999, -999]], [1, -1], HW)
    assert pts[0, 0].tolist() == [200.0, 0.0] and labels.tolist() == [[1, -1]]
    pts, _ = check_points([[1.01, 0.5]], [1], HW, normalized=True)
    assert pts[0, 0, 0] == 1.0


@pytest.mark.parametrize('box,match', [
    ([1, 2, 3], r'\[4\] or \[B, 4\]'), ([10, 10, 5, 20], 'x2 >= x1'), ([0, 0, np.nan, 5], 'non-finite'),
    ([0, 0, 300, 50], 'outside the image'), ('abcd', 'numbers')])
def test_bad_boxes(box, match):
    with pytest.raises(ValueError, match=match):
        check_boxes(box, HW)


@pytest.mark.parametrize('mask,match', [
    (np.zeros((50, 50)), r'must be \[100, 200\]'), (np.zeros((1, 100, 200)), r'\[100, 200\]'),
    (np.full(HW, np.nan), 'NaN'), (np.full(HW, 'a'), 'numeric or bool')])
def test_bad_masks(mask, match):
    with pytest.raises(ValueError, match=match):
        check_mask(mask, 'mask', HW)


@pytest.mark.parametrize('value,error', [(True, TypeError), (1.0, TypeError), ('3', TypeError),
                                         (None, TypeError), (-1, ValueError), (300, ValueError)])
def test_bad_ints(value, error):
    with pytest.raises(error, match='obj_id'):
        check_int(value, 'obj_id', 0, 254)
    assert check_int(np.int64(7), 'obj_id', 0, 254) == 7


@pytest.fixture(scope='module')
def image_files(tmp_path_factory):
    d = tmp_path_factory.mktemp('files')
    Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(d / 'ok.jpg', quality=95)
    data = (d / 'ok.jpg').read_bytes()
    (d / 'truncated.jpg').write_bytes(data[:len(data) // 2])
    (d / 'empty.jpg').write_bytes(b'')
    (d / 'garbage.jpg').write_bytes(b'\x00not an image' * 20)
    (d / 'folder.jpg').mkdir()
    return d


@pytest.mark.parametrize('name,error,match', [
    ('missing.jpg', FileNotFoundError, 'not found'), ('empty.jpg', ValueError, 'empty'),
    ('garbage.jpg', ValueError, 'cannot be read as an image'),
    ('truncated.jpg', ValueError, 'corrupt or truncated'), ('folder.jpg', ValueError, 'folder'),
    ('ok.jpg', ValueError, 'above the cap')])
def test_bad_image_files(image_files, name, error, match):
    with pytest.raises(error, match=match):
        read_image_file(image_files / name, max_pixels=1000)
    assert read_image_file(image_files / 'ok.jpg', mode='BGR').shape == (40, 60, 3)


@pytest.mark.parametrize('text,match', [('', 'empty'), ('[1, 2', 'not valid JSON'),
                                        ('[NaN]', 'non-finite'), ('{"a": Infinity}', 'non-finite'),
                                        ('{"a": 1}', 'expected a JSON list')])
def test_bad_json_files(tmp_path, text, match):
    path = tmp_path / 'p.json'
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_json_file(path, expect=list)


def test_json_output_never_holds_nan(tmp_path):
    with pytest.raises(ValueError, match=r"non-finite number at \['scores'\]\[1\]"):
        atomic_write_json({'scores': [0.5, float('nan')]}, tmp_path / 'out.json')
    assert not (tmp_path / 'out.json').exists()
    atomic_write_json({'name': 'nan'}, tmp_path / 'out.json')  # a string is text
    assert json.loads((tmp_path / 'out.json').read_text()) == {'name': 'nan'}


@pytest.mark.parametrize('error', [ValueError('x.json: "id" must be an int'),
                                   FileNotFoundError('x.json: "id" must be an int'),
                                   KeyError('x.json: "id" must be an int')])
def test_cli_input_errors_exit_with_one_line(error):
    def main():
        raise error

    with pytest.raises(SystemExit) as e:
        with cli_input_errors('tool.py'):
            main()
    # the message itself (a KeyError's str() would be its repr, in quotes), no traceback
    assert e.value.code == 'tool.py: error: x.json: "id" must be an int'
    with pytest.raises(ZeroDivisionError):  # a bug is not an input error: its traceback stays
        with cli_input_errors('tool.py'):
            1 / 0


def test_check_out_path(tmp_path):
    (tmp_path / 'f').write_text('x')
    assert check_out_path(tmp_path / 'new' / 'o.json') == tmp_path / 'new' / 'o.json'
    assert check_out_path(tmp_path, folder=True) == tmp_path
    with pytest.raises(ValueError, match='--out .* is an existing folder, expected a file'):
        check_out_path(tmp_path, '--out')
    with pytest.raises(ValueError, match='is an existing file, expected a folder'):
        check_out_path(tmp_path / 'f', folder=True)
    with pytest.raises(ValueError, match=r'cannot be created: .*/f is a file'):
        check_out_path(tmp_path / 'f' / 'sub' / 'o.json')
    with pytest.raises(TypeError, match='must be a path'):
        check_out_path(3)


def test_require_list():
    assert require_list({'a': [1]}, 'a', 'x.json') == [1]
    with pytest.raises(ValueError, match='x.json: "a" must be a JSON list, got dict'):
        require_list({'a': {}}, 'a', 'x.json')
    with pytest.raises(ValueError, match='x.json: "a" is an empty list'):
        require_list({'a': []}, 'a', 'x.json', allow_empty=False)


@pytest.mark.parametrize('box,match', [([1, 2, 3], r'must be \[x, y, w, h\]'),
                                       ([1, 2, -1, 3], 'width and height >= 0'),
                                       ([1, float('nan'), 1, 1], 'finite'),
                                       ('1234', 'must hold numbers')])
def test_bad_xywh_boxes(box, match):
    with pytest.raises(ValueError, match=match):
        check_xywh_box(box, 'ann 1 "bbox"')
    assert check_xywh_box([1, 2, 0, 3], 'b').tolist() == [1, 2, 0, 3]  # a zero side is accepted


@pytest.mark.parametrize('orientation', range(1, 9))
def test_exif_orientation_matches_mmcv(tmp_path, orientation):
    """``exif_orientation=True`` gives mmcv / OpenCV's pixels (what LoadImageFromFile loads)."""
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 40, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = orientation  # the EXIF orientation tag
    image.save(tmp_path / 'o.jpg', exif=exif, quality=95)
    ours = read_image_file(tmp_path / 'o.jpg', mode='BGR', exif_orientation=True)
    np.testing.assert_array_equal(ours, mmcv.imread(str(tmp_path / 'o.jpg')))
    assert read_image_file(tmp_path / 'o.jpg').shape == (24, 40, 3)  # default: as stored
