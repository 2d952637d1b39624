"""``tools/test.py`` with ``YouTubeVIS2019Metric`` end to end: the toy VIS eval config on a toy
YouTube-VIS split written by the test, with a randomly initialised checkpoint of its model."""
import re
import subprocess
import sys

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import seg  # noqa: F401
from seg.datasets.toy_dataset import make_toy_dataset
from seg.registry import MODELS
from tests.conftest import REPO_ROOT

CFG = REPO_ROOT / 'configs/fastsam2/toy/eval_vis_toy.py'


def test_youtube_vis_map_through_tools_test(tmp_path):
    toy = make_toy_dataset(tmp_path / 'toy', parts=['ytvis'], num_videos=2, video_frames=(3, 4))
    init_default_scope('mmdet')
    model = MODELS.build(Config.fromfile(str(CFG)).model)
    ckpt = tmp_path / 'init.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/test.py'), str(CFG), str(ckpt), '--work-dir',
         str(tmp_path / 'work'), '--cfg-options', f'test_dataloader.dataset.data_root={toy.ytvis_root}/'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    values = dict(re.findall(r'youtube_vis/(segm_mAP\w*): (-?[\d.]+)', out))
    assert set(values) == {'segm_mAP', 'segm_mAP_50', 'segm_mAP_75'}, out[-3000:]
    assert all(0.0 <= float(v) <= 1.0 for v in values.values())
