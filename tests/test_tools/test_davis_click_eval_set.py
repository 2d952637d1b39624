"""tools/data/davis_click_eval_set.py: DAVIS frames -> single-channel id masks for the click protocol."""
import numpy as np
import pytest
from PIL import Image

from tests.conftest import load_script

from .test_vos_baselines import write_square_davis2016

TOOL = load_script('tools/data/davis_click_eval_set.py')


def _mask(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == 'L'
        return np.array(im)


def test_davis2016_binary_masks_become_object_1_on_evenly_spaced_frames(tmp_path):
    root, out = tmp_path / 'davis', tmp_path / 'out'
    write_square_davis2016(root, {'right': (3, 0)}, num_frames=8)
    names = TOOL.main([str(root), '--year', '2016', '--sequences', 'right',
                       '--frames-per-sequence', '3', '--out', str(out)])
    assert names == ['right_00000', 'right_00002', 'right_00005']
    for name in names:
        src = root / 'Annotations/480p/right' / f'{name.split("_")[1]}.png'
        assert np.array_equal(_mask(out / 'masks' / f'{name}.png'), np.array(Image.open(src)) // 255)
        jpg = root / 'JPEGImages/480p/right' / f'{name.split("_")[1]}.jpg'
        assert (out / 'images' / f'{name}.jpg').read_bytes() == jpg.read_bytes()


def test_davis2017_keeps_ids_and_marks_void_ignored(tmp_path, shared_data):
    root, out = shared_data / 'davis2017_sample', tmp_path / 'out'
    TOOL.main([str(root), '--year', '2017', '--sequences', 'tennis', '--frames-per-sequence', '1',
               '--out', str(out)])
    ids = np.array(Image.open(root / 'Annotations/480p/tennis/00000.png'))
    got = _mask(out / 'masks/tennis_00000.png')
    assert 255 in ids and set(np.unique(got).tolist()) == {0, 1, 2, TOOL.IGNORE}
    assert np.array_equal(got == TOOL.IGNORE, ids == 255)
    assert np.array_equal(np.where(got == TOOL.IGNORE, 255, got), ids)


def test_more_frames_than_the_sequence_has_is_an_error(tmp_path, shared_data):
    with pytest.raises(ValueError, match=r'bear: 2 frame\(s\), fewer than --frames-per-sequence 3'):
        TOOL.main([str(shared_data / 'davis2017_sample'), '--year', '2017', '--sequences', 'bear',
                   '--frames-per-sequence', '3', '--out', str(tmp_path)])
