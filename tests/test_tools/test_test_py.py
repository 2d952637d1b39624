"""``tools/test.py`` end to end on the real COCO panoptic sample: a checkpoint of the tiny model is
evaluated with PQ (resized test pipeline, with ``--out``, ``--show-dir`` and ``--metrics-out``) and
with the interactive click protocol (original-size pipeline, model bound by
BindInteractivePredictorHook); the numbers are checked against the data, not only their names."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image
from pycocotools import mask as mask_utils

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


@pytest.fixture(scope='module')
def sample(shared_data):
    root = shared_data / 'coco_panoptic_sample'
    return root, json.loads((root / 'panoptic_examples.json').read_text())


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


def test_panoptic_quality_dump_and_pictures(checkpoint, sample, tmp_path):
    root, ann = sample
    out = _run([str(TINY_CFG), str(checkpoint), '--work-dir', str(tmp_path / 'work'),
                '--out', str(tmp_path / 'preds.json'), '--show-dir', 'vis',  # under <work_dir>/<timestamp>/
                '--metrics-out', str(tmp_path / 'metrics.json'), '--cfg-options',
                *_dataset_options(root),
                f'test_evaluator.ann_file={root}/panoptic_examples.json',
                f'test_evaluator.seg_prefix={root}/panoptic_examples/',
                'model.test_cfg.object_mask_thr=0.0'], REPO_ROOT)
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    for group in ('PQ', 'PQ_th', 'PQ_st', 'SQ', 'RQ'):
        value = metrics[f'coco_panoptic/{group}']
        assert 0 <= value <= 100, (group, value)
    assert f"{metrics['coco_panoptic/PQ']:.3f}" in out  # the printed table is the dumped number

    records = json.loads((tmp_path / 'preds.json').read_text())
    images = {im['file_name']: im for im in ann['images']}
    assert sorted(r['img_path'].rsplit('/', 1)[1] for r in records) == sorted(images)
    drawn = 0
    for record in records:
        im = images[record['img_path'].rsplit('/', 1)[1]]
        assert record['ori_shape'] == [im['height'], im['width']]
        # the panoptic segments partition the image at its original size
        cover = sum(mask_utils.decode(s['mask']).astype(int) for s in record['panoptic'])
        assert cover.shape == (im['height'], im['width']) and (cover == 1).all()
        assert len({s['id'] for s in record['panoptic']}) == len(record['panoptic'])
        for inst in record['instances']:
            assert mask_utils.decode(inst['mask']).shape == (im['height'], im['width'])
            assert 0 <= inst['score'] <= 1 and len(inst['bbox']) == 4
        # one overlay per image, at its size, with the predictions drawn on it
        pictures = list((tmp_path / 'work').rglob(f'vis/{im["file_name"].rsplit(".", 1)[0]}.png'))
        assert len(pictures) == 1, pictures
        overlay = np.array(Image.open(pictures[0]))
        raw = np.array(Image.open(root / 'input_images' / im['file_name']).convert('RGB'))
        assert overlay.shape == raw.shape
        drawn += int(np.abs(overlay.astype(int) - raw).mean() > 1)
    assert drawn == len(records)


def test_interactive_protocol_through_tools_test(checkpoint, sample, tmp_path):
    root, ann = sample
    cfg = REPO_ROOT / 'configs/rapsam/rapsam_tiny_coco_interactive_eval.py'
    _run([str(cfg), str(checkpoint), '--work-dir', str(tmp_path), '--metrics-out',
          str(tmp_path / 'm.json'), '--cfg-options', *_dataset_options(root), 'test_evaluator.max_clicks=2',
          'model.data_preprocessor.resize_longest_side=128'], REPO_ROOT)
    metrics = {k.split('/', 1)[1]: v for k, v in json.loads((tmp_path / 'm.json').read_text()).items()}
    # every non-crowd thing of the json is one object of the protocol
    things = {c['id'] for c in ann['categories'] if c['isthing']}
    expected = sum(1 for a in ann['annotations'] for s in a['segments_info']
                   if s['category_id'] in things and not s['iscrowd'])
    assert metrics['num_objects'] == expected
    for k in ('NoC@0.5', 'NoC@0.85', 'NoC@0.9'):
        assert 1 <= metrics[k] <= 2, (k, metrics[k])  # at least one click, at most max_clicks
    assert 0 <= metrics['NoF@0.9'] <= expected
    assert metrics['NoC@0.5'] <= metrics['NoC@0.85'] <= metrics['NoC@0.9']  # higher bars take more clicks
    for k in ('mIoU@1', 'mIoU@2', 'box_mIoU'):
        assert 0 <= metrics[k] <= 1, (k, metrics[k])
