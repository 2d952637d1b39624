"""Atomic writers: content round trip, numpy values, and no partial file on failure."""
import json

import numpy as np
import pytest
from PIL import Image

from seg.utils.atomic_io import atomic_open, atomic_save_png, atomic_write_json


def test_json_with_numpy_values(tmp_path):
    path = tmp_path / 'sub' / 'm.json'
    atomic_write_json({'a': np.float32(0.5), 'b': np.arange(3), 'c': np.int64(7)}, path)
    assert json.loads(path.read_text()) == {'a': 0.5, 'b': [0, 1, 2], 'c': 7}
    with pytest.raises(TypeError, match='cannot encode object'):
        atomic_write_json({'x': object()}, tmp_path / 'bad.json')


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / 'm.json'
    path.write_text('old')
    with pytest.raises(RuntimeError):
        with atomic_open(path) as f:
            f.write('half')
            raise RuntimeError('crash while writing')
    assert path.read_text() == 'old'
    assert [p.name for p in tmp_path.iterdir()] == ['m.json']


def test_png_keeps_mode_and_palette(tmp_path):
    im = Image.fromarray(np.array([[0, 1], [2, 0]], np.uint8))
    im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0])
    atomic_save_png(im, tmp_path / 'x.png')
    with Image.open(tmp_path / 'x.png') as back:
        assert back.mode == 'P' and back.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
        assert np.array(back).tolist() == [[0, 1], [2, 0]]
