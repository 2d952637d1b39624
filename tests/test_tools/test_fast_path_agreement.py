"""tools/analysis/fast_path_agreement.py on a generated image + object-id mask folder."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from seg.apis.image_predictor import build_model
from tests.conftest import REPO_ROOT, load_script

TINY = str(REPO_ROOT / 'configs/fastsam2/model_fastsam2_tiny.py')


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/analysis/fast_path_agreement.py')


def _data(root):
    rng = np.random.default_rng(0)
    (root / 'images').mkdir()
    (root / 'masks').mkdir()
    for k in range(2):
        img = rng.integers(0, 120, (60, 80, 3), dtype=np.uint8)
        ids = np.zeros((60, 80), np.uint8)
        ids[10:30, 10:40] = 1
        ids[35:55, 45:75] = 2
        ids[0:4, :] = 128  # ignored, never an object
        img[ids == 1] = (220, 200, 40)
        Image.fromarray(img).save(root / 'images' / f'f{k}.jpg')
        Image.fromarray(ids).save(root / 'masks' / f'f{k}.png')


def test_fast_and_full_paths_agree_and_every_object_is_scored(tool, tmp_path):
    _data(tmp_path)
    ckpt = tmp_path / 'w.pth'
    with pytest.warns(UserWarning, match='RANDOM weights'):
        torch.save({'state_dict': build_model(TINY, None).state_dict()}, ckpt)
    out = tmp_path / 'agree.json'
    summary = tool.main([TINY, str(ckpt), '--images', str(tmp_path / 'images'), '--masks',
                         str(tmp_path / 'masks'), '--image-size', '64', '--out', str(out)])
    # 2 objects per image; the 128 band is no object
    assert [r['object'] for r in summary['rows']] == ['f0:1', 'f0:2', 'f1:1', 'f1:2']
    # channels-last and the binary upsampling change no pixel (the default routes do not prune)
    assert summary['min_agreement'] > 0.999
    assert json.loads(out.read_text())['objects'] == 4


def test_a_mask_without_its_image_is_a_clear_error(tool, tmp_path):
    _data(tmp_path)
    (tmp_path / 'images' / 'f1.jpg').unlink()
    with pytest.raises(FileNotFoundError, match='no image f1'):
        tool.main([TINY, TINY, '--images', str(tmp_path / 'images'), '--masks',
                   str(tmp_path / 'masks')])
