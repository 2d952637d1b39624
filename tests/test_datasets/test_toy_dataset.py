"""The toy generator: real formats, determinism, size."""
import hashlib
import json

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from seg.datasets.toy_dataset import make_toy_dataset, uncompressed_rle
from seg.evaluation.davis import davis_palette


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob('*')):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_files_other_seed_differs(tmp_path):
    kwargs = dict(num_images=(2, 1), num_videos=1, num_sequences=1, video_frames=(3, 4))
    a = make_toy_dataset(tmp_path / 'a', seed=5, **kwargs)
    make_toy_dataset(tmp_path / 'b', seed=5, **kwargs)
    make_toy_dataset(tmp_path / 'c', seed=6, **kwargs)
    assert _digest(tmp_path / 'a') == _digest(tmp_path / 'b') != _digest(tmp_path / 'c')
    # writing one part gives the same files for that part as writing everything
    make_toy_dataset(tmp_path / 'd', seed=5, parts=('davis', ), **kwargs)
    assert _digest(tmp_path / 'd' / 'davis2017') == _digest(a.davis_root)


def test_default_size_and_formats(toy):
    size = sum(p.stat().st_size for p in toy.root.rglob('*') if p.is_file())
    assert 0.5e6 < size < 8e6
    png = Image.open(next((toy.davis_root / 'Annotations' / '480p').rglob('*.png')))
    assert png.mode == 'P' and png.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
    pan = json.loads((toy.coco_root / 'annotations' / 'panoptic_val2017.json').read_text())
    assert {c['isthing'] for c in pan['categories']} == {0, 1}
    assert all(s['id'] < 256**3 for a in pan['annotations'] for s in a['segments_info'])
    vis = json.loads((toy.ytvis_root / 'train.json').read_text())
    seg = next(s for a in vis['annotations'] for s in a['segmentations'] if s)
    assert isinstance(seg['counts'], list)  # uncompressed, as YouTube-VIS 2019 ships
    assert any(s is None for a in vis['annotations'] for s in a['segmentations'])


def test_uncompressed_rle_matches_pycocotools():
    rng = np.random.default_rng(0)
    for mask in (rng.random((7, 5)) > 0.5, np.ones((3, 4), bool), np.zeros((2, 2), bool)):
        rle = uncompressed_rle(mask)
        assert sum(rle['counts']) == mask.size
        decoded = mask_utils.decode(mask_utils.frPyObjects(rle, *rle['size']))
        assert np.array_equal(decoded.astype(bool), mask)


def test_davis_palette_matches_the_real_davis_png(shared_data):
    real = Image.open(shared_data / 'davis2017_sample' / 'Annotations' / '480p' / 'tennis' / '00000.png')
    assert real.getpalette()[:3 * 8] == davis_palette()[:3 * 8]
