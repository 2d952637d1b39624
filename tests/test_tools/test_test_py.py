"""``tools/test.py`` end to end on the real COCO panoptic sample: a checkpoint of the tiny model is
evaluated with PQ (resized test pipeline) and with the interactive click protocol (original-size
pipeline, model bound by BindInteractivePredictorHook)."""
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

import seg  # noqa: F401
from seg.registry import MODELS
from tests.conftest import REPO_ROOT

TINY_CFG = REPO_ROOT / 'configs/rapsam/rapsam_tiny_coco_panoptic.py'


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    model = MODELS.build(Config.fromfile(str(TINY_CFG)).model)
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def _dataset_options(root) -> list:
    return [f'test_dataloader.dataset.data_root={root}/',
            'test_dataloader.dataset.ann_file=panoptic_examples.json',
            'test_dataloader.dataset.data_prefix.img=input_images/',
            'test_dataloader.dataset.data_prefix.seg=panoptic_examples/']


def _run(args, cwd):
    proc = subprocess.run([sys.executable, str(REPO_ROOT / 'tools/test.py'), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout + proc.stderr


def test_panoptic_quality_through_tools_test(checkpoint, shared_data, tmp_path):
    root = shared_data / 'coco_panoptic_sample'
    out = _run([str(TINY_CFG), str(checkpoint), '--work-dir', str(tmp_path), '--cfg-options',
                *_dataset_options(root),
                f'test_evaluator.ann_file={root}/panoptic_examples.json',
                f'test_evaluator.seg_prefix={root}/panoptic_examples/',
                'model.test_cfg.object_mask_thr=0.0'], REPO_ROOT)
    assert 'PQ' in out and 'Things' in out and 'Stuff' in out


def test_interactive_protocol_through_tools_test(checkpoint, shared_data, tmp_path):
    root = shared_data / 'coco_panoptic_sample'
    cfg = REPO_ROOT / 'configs/rapsam/rapsam_tiny_coco_interactive_eval.py'
    out = _run([str(cfg), str(checkpoint), '--work-dir', str(tmp_path), '--cfg-options',
                *_dataset_options(root), 'test_evaluator.max_clicks=2',
                'model.data_preprocessor.resize_longest_side=128'], REPO_ROOT)
    for key in ('NoC@0.5', 'NoF@0.9', 'mIoU@2', 'box_mIoU', 'num_objects'):
        assert key in out, out[-3000:]
