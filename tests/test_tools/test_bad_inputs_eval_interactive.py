"""Bad inputs to tools/evaluation/eval_interactive.py: an error naming the flag / file / segment,
checked before the predictor runs; argparse-level mistakes exit with status 2 and a message."""
import json
import re

import numpy as np
import pytest
from PIL import Image

from seg.evaluation.panoptic_quality import write_panoptic_png
from tests.conftest import load_script
from tests.test_tools.bad_input_cases import run_bad_input_case

TOY = 'tests.test_evaluation.toy_predictor:DiskPredictor'
H, W = 30, 40


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/evaluation/eval_interactive.py')


def _valid(root):
    """One image with one rectangle object (mask 255), and the same as COCO panoptic."""
    (root / 'images').mkdir()
    (root / 'masks').mkdir()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / 'images' / 'a.jpg')
    mask = np.zeros((H, W), np.uint8)
    mask[5:20, 8:30] = 255
    Image.fromarray(mask).save(root / 'masks' / 'a.png')
    write_panoptic_png((mask > 0).astype(np.int64) * 7, root / 'pan' / 'a.png')
    (root / 'pan.json').write_text(json.dumps({'annotations': [
        {'image_id': 1, 'file_name': 'a.png', 'segments_info': [{'id': 7, 'category_id': 1}]}]}))
    return root


def _masks_argv(root, *extra):
    return ['--predictor', TOY, '--images', str(root / 'images'), '--masks', str(root / 'masks'),
            '--max-clicks', '2', '--out', str(root / 'm.json'), *extra]


def _coco_argv(root, *extra):
    return ['--predictor', TOY, '--images', str(root / 'images'), '--coco-panoptic',
            str(root / 'pan.json'), str(root / 'pan'), '--max-clicks', '2', '--out',
            str(root / 'm.json'), *extra]


def _pan(root, fn):
    data = json.loads((root / 'pan.json').read_text())
    fn(data)
    (root / 'pan.json').write_text(json.dumps(data))


CASES = {
    # (mutate, argv builder, extra flags, error, match)
    'predictor without colon': (None, _masks_argv, ['--predictor', 'toy'], ValueError,
                                "--predictor must be MODULE:FACTORY, got 'toy'"),
    'predictor module missing': (None, _masks_argv, ['--predictor', 'no_such_mod:F'], ValueError,
                                 "cannot import 'no_such_mod'"),
    'predictor factory missing': (None, _masks_argv,
                                  ['--predictor', 'tests.test_evaluation.toy_predictor:Nope'],
                                  ValueError, "has no callable 'Nope'"),
    'kwargs not JSON': (None, _masks_argv, ['--predictor-kwargs', '{radius: 5}'], ValueError,
                        '--predictor-kwargs: not valid JSON'),
    'kwargs with NaN': (None, _masks_argv, ['--predictor-kwargs', '{"radius": NaN}'], ValueError,
                        "non-finite number 'NaN'"),
    'kwargs a list': (None, _masks_argv, ['--predictor-kwargs', '[5]'], ValueError,
                      '--predictor-kwargs must be a JSON object'),
    'images folder missing': (None, _masks_argv, ['--images', '{root}/nope'], FileNotFoundError,
                              '--images folder not found: .*nope'),
    'masks folder missing': (None, _masks_argv, ['--masks', '{root}/nope'], FileNotFoundError,
                             '--masks folder not found'),
    'masks folder without PNG': (lambda r: (r / 'masks' / 'a.png').unlink(), _masks_argv, [],
                                 ValueError, 'has no .png mask'),
    'mask corrupt': (lambda r: (r / 'masks' / 'a.png').write_bytes(b'garbage'), _masks_argv, [],
                     ValueError, 'mask PNG .*a.png cannot be read as an image'),
    'mask RGB': (lambda r: Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(
        r / 'masks' / 'a.png'), _masks_argv, [], ValueError, 'a.png: expected a single-channel'),
    'mask all background': (lambda r: Image.fromarray(np.zeros((H, W), np.uint8)).save(
        r / 'masks' / 'a.png'), _masks_argv, [], ValueError, 'no object to evaluate'),
    'mask all ignore': (lambda r: Image.fromarray(np.full((H, W), 128, np.uint8)).save(
        r / 'masks' / 'a.png'), _masks_argv, ['--ignore-value', '128'], ValueError,
        'no object to evaluate: .* background / ignore'),
    'image missing': (lambda r: (r / 'images' / 'a.jpg').unlink(), _masks_argv, [],
                      FileNotFoundError, r'no image a\{.jpg,.jpeg,.png\} in'),
    'image corrupt': (lambda r: (r / 'images' / 'a.jpg').write_bytes(b'garbage'), _masks_argv,
                      [], ValueError, 'image .*a.jpg cannot be read as an image'),
    'image truncated': (lambda r: (r / 'images' / 'a.jpg').write_bytes(
        (r / 'images' / 'a.jpg').read_bytes()[:150]), _masks_argv, [], ValueError,
        'a.jpg is corrupt or truncated'),
    'mask and image sizes differ': (lambda r: Image.fromarray(np.zeros((H, W + 1, 3), np.uint8))
                                    .save(r / 'images' / 'a.jpg'), _masks_argv, [], ValueError,
                                    'differ in size'),
    'coco json missing': (lambda r: (r / 'pan.json').unlink(), _coco_argv, [], FileNotFoundError,
                          '--coco-panoptic json not found'),
    'coco json truncated': (lambda r: (r / 'pan.json').write_text('{"annotations": [{'),
                            _coco_argv, [], ValueError, 'pan.json is not valid JSON'),
    'coco json without annotations': (lambda r: (r / 'pan.json').write_text('{}'), _coco_argv, [],
                                      ValueError, r"lacks the key\(s\) \['annotations'\]"),
    'coco json with no annotation': (lambda r: _pan(r, lambda d: d.update(annotations=[])),
                                     _coco_argv, [], ValueError, '"annotations" is an empty list'),
    'coco segment without id': (lambda r: _pan(r, lambda d: d['annotations'][0].update(
        segments_info=[{'category_id': 1}])), _coco_argv, [], ValueError,
        r"segment lacks the key\(s\) \['id'\]"),
    'coco segment not in its PNG': (lambda r: _pan(r, lambda d: d['annotations'][0].update(
        segments_info=[{'id': 5}])), _coco_argv, [], ValueError,
        'segment 5 of image 1 has no pixel in .*a.png'),
    'coco PNG folder missing': (None, _coco_argv, ['--coco-panoptic', '{root}/pan.json',
                                                   '{root}/nope'], FileNotFoundError,
                                '--coco-panoptic PNG folder not found'),
    'coco PNG not RGB': (lambda r: Image.fromarray(np.zeros((H, W), np.uint8)).save(
        r / 'pan' / 'a.png'), _coco_argv, [], ValueError, 'COCO panoptic PNGs are RGB'),
    '--out is a folder': (lambda r: (r / 'o').mkdir(), _masks_argv, ['--out', '{root}/o'],
                          ValueError, '--out .* is an existing folder'),
}


@pytest.mark.parametrize('case', list(CASES))
def test_bad_input(tool, tmp_path, case):
    run_bad_input_case(tool.main, _valid(tmp_path), CASES[case], 'm.json')


@pytest.mark.parametrize('argv,extra,match', [
    (_coco_argv, ['--ignore-value', '128'], '--ignore-value applies to --masks only'),
    (_masks_argv, ['--ignore-value', '0'], '--ignore-value must be a mask value in 1..65535'),
    (_masks_argv, ['--max-clicks', '0'], '--max-clicks must be >= 1'),
    (_masks_argv, ['--target-iou', '1.5'], r'--target-iou takes values in \(0, 1\], got 1.5'),
    (_masks_argv, ['--noc-thrs', '0.5', '0'], r'--noc-thrs takes values in \(0, 1\], got 0.0'),
    (_masks_argv, ['--pred-thr', 'nan'], r'--pred-thr takes values in \(0, 1\], got nan'),
    (_masks_argv, ['--coco-panoptic', 'j', 'd'], 'not allowed with argument'),
])
def test_bad_flag_combinations_are_argparse_errors(tool, tmp_path, capsys, argv, extra, match):
    with pytest.raises(SystemExit) as e:
        tool.main(argv(_valid(tmp_path), *extra))
    assert e.value.code == 2
    assert re.search(match, capsys.readouterr().err)


def test_valid_cases(tool, tmp_path):
    root = _valid(tmp_path)
    assert tool.main(_masks_argv(root))['num_objects'] == 1
    assert tool.main(_coco_argv(root))['num_objects'] == 1
