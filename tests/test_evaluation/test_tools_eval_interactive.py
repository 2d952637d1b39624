"""tools/evaluation/eval_interactive.py with the toy predictor on synthetic and shared masks."""
import json

import numpy as np
import pytest
from PIL import Image

from seg.evaluation.interactive import evaluate_object, interior_point, summarize_objects
from seg.evaluation.panoptic_quality import read_panoptic_png

from .tool_runner import load_main
from .toy_predictor import DiskPredictor

TOY = 'tests.test_evaluation.toy_predictor:DiskPredictor'


def test_mask_folder_with_ignore_value(tmp_path):
    (tmp_path / 'images').mkdir()
    (tmp_path / 'masks').mkdir()
    rect = np.zeros((30, 40), np.uint8)
    rect[5:20, 8:30] = 255
    rect[5:20, 30:33] = 128  # GrabCut-style ignore band
    two = np.zeros((30, 40), np.uint8)
    two[2:9, 2:9] = 1
    two[15:28, 20:38] = 2  # two objects in one mask
    for name, mask in (('a', rect), ('b', two)):
        Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / 'images' / f'{name}.jpg')
        Image.fromarray(mask).save(tmp_path / 'masks' / f'{name}.png')
    main = load_main('eval_interactive.py')
    metrics = main(['--predictor', TOY, '--predictor-kwargs', '{"radius": 5}', '--images',
                    str(tmp_path / 'images'), '--masks', str(tmp_path / 'masks'),
                    '--ignore-value', '128', '--max-clicks', '4', '--out',
                    str(tmp_path / 'm.json'), '--plot', str(tmp_path / 'curve.png')])
    gts = [np.where(rect == 128, -1, rect == 255), two == 1, two == 2]
    image = np.zeros((30, 40, 3), np.uint8)
    expected = summarize_objects([
        evaluate_object(image, g.astype(np.int64), DiskPredictor(5), 4,
                        box=[8, 5, 30, 20] if k == 0 else None) for k, g in enumerate(gts)],
        (0.5, 0.8, 0.85, 0.9), 4)
    for key in ('NoC@0.85', 'NoF@0.9', 'mIoU@1', 'mIoU@4'):
        assert metrics[key] == pytest.approx(expected[key])
    assert metrics['num_objects'] == 3
    saved = json.loads((tmp_path / 'm.json').read_text())
    assert [o['object'] for o in saved['per_object']] == ['a:255', 'b:1', 'b:2']
    assert saved['per_object'][0]['box_iou'] == 1.0  # the toy fills the rectangle's box
    with Image.open(tmp_path / 'curve.png') as im:
        assert im.format == 'PNG' and im.size[0] > 100


def test_coco_sam_single_click(shared_data, tmp_path):
    root = shared_data / 'coco_panoptic_sample'
    main = load_main('eval_interactive.py')
    metrics = main(['--predictor', TOY, '--predictor-kwargs', '{"radius": 12}', '--images',
                    str(root / 'input_images'), '--coco-panoptic',
                    str(root / 'panoptic_examples.json'), str(root / 'panoptic_examples'),
                    '--max-clicks', '1', '--no-box', '--out', str(tmp_path / 'm.json')])
    ious = []
    for ann in json.loads((root / 'panoptic_examples.json').read_text())['annotations']:
        ids = read_panoptic_png(root / 'panoptic_examples' / ann['file_name'])
        yy, xx = np.ogrid[:ids.shape[0], :ids.shape[1]]
        for seg in ann['segments_info']:
            mask = ids == seg['id']
            y, x = interior_point(mask)
            disk = (yy - y) ** 2 + (xx - x) ** 2 <= 144
            ious.append(np.float32((disk & mask).sum() / (disk | mask).sum()))
    assert metrics['num_objects'] == 50 and 'box_mIoU' not in metrics
    assert metrics['mIoU@1'] == pytest.approx(float(np.mean(ious)), rel=1e-6)
