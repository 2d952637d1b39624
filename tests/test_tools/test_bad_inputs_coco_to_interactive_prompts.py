"""Bad inputs to tools/dataset_converters/coco_to_interactive_prompts.py (instances and
panoptic jsons): an error naming the file / record / key / value, nothing written."""
import json
import re

import numpy as np
import pytest
from PIL import Image

from seg.evaluation.panoptic_quality import write_panoptic_png
from tests.conftest import load_script
from tests.test_tools.bad_input_cases import run_bad_input_case

H, W = 20, 30
CATS = [{'id': 1, 'name': 'cat', 'isthing': 1}, {'id': 2, 'name': 'sky', 'isthing': 0}]


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/dataset_converters/coco_to_interactive_prompts.py')


def _valid(root):
    """``inst.json``: one image, one polygon rectangle; ``pan.json`` + ``pan/``: the same image
    with a thing and a stuff segment."""
    image = {'id': 1, 'file_name': 'a.jpg', 'height': H, 'width': W}
    (root / 'inst.json').write_text(json.dumps({
        'images': [image], 'categories': CATS[:1],
        'annotations': [{'id': 5, 'image_id': 1, 'category_id': 1, 'iscrowd': 0, 'area': 80.0,
                         'bbox': [4, 2, 10, 8], 'segmentation': [[4, 2, 14, 2, 14, 10, 4, 10]]}]}))
    ids = np.zeros((H, W), np.int64)
    ids[2:10, 4:14] = 3
    ids[12:, :] = 4
    write_panoptic_png(ids, root / 'pan' / 'a.png')
    (root / 'pan.json').write_text(json.dumps({
        'images': [image], 'categories': CATS,
        'annotations': [{'image_id': 1, 'file_name': 'a.png', 'segments_info': [
            {'id': 3, 'category_id': 1, 'iscrowd': 0, 'area': 80, 'bbox': [4, 2, 10, 8]},
            {'id': 4, 'category_id': 2, 'iscrowd': 0, 'area': 240, 'bbox': [0, 12, 30, 8]}]}]}))
    return root


def _inst(root, *extra):
    return [str(root / 'inst.json'), str(root / 'out.json'), *extra]


def _pan(root, *extra):
    return [str(root / 'pan.json'), str(root / 'out.json'), '--panoptic-dir', str(root / 'pan'),
            *extra]


def _edit(name, fn):
    def mutate(root):
        data = json.loads((root / name).read_text())
        fn(data)
        (root / name).write_text(json.dumps(data))
    return mutate


def _ann(key, value):
    return _edit('inst.json', lambda d: d['annotations'][0].update({key: value}))


def _seg(key, value):
    return _edit('pan.json', lambda d: d['annotations'][0]['segments_info'][0].update({key: value}))


CASES = {
    'json missing': (lambda r: (r / 'inst.json').unlink(), _inst, [], FileNotFoundError,
                     'COCO annotation file not found: .*inst.json'),
    'json empty': (lambda r: (r / 'inst.json').write_text(''), _inst, [], ValueError,
                   'inst.json is empty'),
    'json truncated': (lambda r: (r / 'inst.json').write_text('{"images": [{"id": 1'), _inst, [],
                       ValueError, 'inst.json is not valid JSON'),
    'NaN in a bbox': (lambda r: (r / 'inst.json').write_text((r / 'inst.json').read_text().replace(
        '[4, 2, 10, 8]', '[4, 2, NaN, 8]')), _inst, [], ValueError, "non-finite number 'NaN'"),
    'json a list': (lambda r: (r / 'inst.json').write_text('[1]'), _inst, [], ValueError,
                    'expected a JSON dict, got list'),
    'no images key': (_edit('inst.json', lambda d: d.pop('images')), _inst, [], ValueError,
                      r"inst.json lacks the key\(s\) \['images'\]"),
    'no image': (_edit('inst.json', lambda d: d.update(images=[], annotations=[])), _inst, [],
                 ValueError, 'inst.json: the image list is empty'),
    'image without file_name': (_edit('inst.json', lambda d: d['images'][0].pop('file_name')),
                                _inst, [], ValueError, r"image 0 lacks the key\(s\) \['file_name'\]"),
    'image id a string': (_edit('inst.json', lambda d: d['images'][0].update(id='1')), _inst, [],
                          TypeError, 'image 0 "id" must be an int, got \'1\''),
    'image id twice': (_edit('inst.json', lambda d: d['images'].append(d['images'][0])), _inst,
                       [], ValueError, 'image: id 1 is used twice'),
    'image height 0': (_edit('inst.json', lambda d: d['images'][0].update(height=0)), _inst, [],
                       ValueError, 'image 1 "height" must be >= 1, got 0'),
    'annotation of a missing image': (_ann('image_id', 9), _inst, [], ValueError,
                                      'annotation 5 "image_id" is 9, which is not the id of any image'),
    'annotation of a missing category': (_ann('category_id', 7), _inst, [], ValueError,
                                         '"category_id" is 7, which is not the id of any category'),
    'negative bbox width': (_ann('bbox', [4, 2, -10, 8]), _inst, [], ValueError,
                            'annotation 5 "bbox" must be finite with width and height >= 0'),
    'bbox of 3 values': (_ann('bbox', [4, 2, 10]), _inst, [], ValueError,
                         r'"bbox" must be \[x, y, w, h\]'),
    'bbox of strings': (_ann('bbox', ['a', 2, 10, 8]), _inst, [], ValueError, 'must hold numbers'),
    'negative area': (_ann('area', -1), _inst, [], ValueError, '"area" must be a number >= 0'),
    'iscrowd 3': (_ann('iscrowd', 3), _inst, [], ValueError, '"iscrowd" must be 0 or 1, got 3'),
    'no segmentation': (_edit('inst.json', lambda d: d['annotations'][0].pop('segmentation')),
                        _inst, [], ValueError, r"annotation 0 lacks the key\(s\) \['segmentation'\]"),
    'undecodable segmentation': (_ann('segmentation', 'abc'), _inst, [], ValueError,
                                 'annotation 5 has a segmentation that cannot be decoded'),
    'RLE of another size': (_ann('segmentation', {'size': [5, 5], 'counts': [0, 25]}), _inst, [],
                            ValueError, r'annotation 5 decodes to a mask of \(5, 5\)'),
    'empty mask': (_ann('segmentation', [[4, 2, 4, 2, 4, 2]]), _inst, [], ValueError,
                   'object 5 of image a.jpg has an empty mask'),
    'no categories': (_edit('inst.json', lambda d: d.update(categories=[])), _inst, [],
                      ValueError, '"categories" is an empty list'),
    'panoptic folder missing': (None, _pan, ['--panoptic-dir', '{root}/nope'], FileNotFoundError,
                                'panoptic PNG folder not found'),
    'panoptic PNG missing': (lambda r: (r / 'pan' / 'a.png').unlink(), _pan, [],
                             FileNotFoundError, 'panoptic PNG not found: .*pan/a.png'),
    'panoptic PNG grey': (lambda r: Image.fromarray(np.zeros((H, W), np.uint8)).save(
        r / 'pan' / 'a.png'), _pan, [], ValueError, 'COCO panoptic PNGs are RGB'),
    'panoptic PNG corrupt': (lambda r: (r / 'pan' / 'a.png').write_bytes(b'x' * 50), _pan, [],
                             ValueError, 'cannot be read as an image'),
    'panoptic PNG of another size': (lambda r: write_panoptic_png(
        np.full((H, W + 2), 3, np.int64), r / 'pan' / 'a.png'), _pan, [], ValueError,
        r'a.png is \(20, 32\), its image a.jpg is \(20, 30\)'),
    'image without panoptic annotation': (_edit('pan.json', lambda d: d['images'].append(
        dict(d['images'][0], id=2, file_name='b.jpg'))), _pan, [], ValueError,
        'image b.jpg has no panoptic annotation'),
    'two annotations of one image': (_edit('pan.json', lambda d: d['annotations'].append(
        d['annotations'][0])), _pan, [], ValueError, 'two annotations for image 1'),
    'segment of a missing category': (_seg('category_id', 9), _pan, [], ValueError,
                                      'segment 3 "category_id" is 9'),
    'segment id twice': (_seg('id', 4), _pan, [], ValueError, 'segment: id 4 is used twice'),
    'segment not in its PNG': (_seg('id', 8), _pan, [], ValueError,
                               'object 8 of image a.jpg has an empty mask'),
    'categories file missing': (None, _inst, ['--categories', '{root}/nope.json'],
                                FileNotFoundError, '--categories json not found'),
    'categories file not a list': (lambda r: (r / 'c.json').write_text('{"id": 1}'), _inst,
                                   ['--categories', '{root}/c.json'], ValueError,
                                   'expected a JSON list, got dict'),
    'out_file is a folder': (lambda r: (r / 'o').mkdir(), lambda r, *e: [str(r / 'inst.json'),
                                                                         str(r / 'o')], [],
                             ValueError, 'out_file .*o is an existing folder'),
    'min above max points': (None, _inst, ['--num-pos', '3', '1'], ValueError, 'num_pos_points'),
    'negative box jitter': (None, _inst, ['--box-jitter', '-1'], ValueError, 'box_jitter'),
}


@pytest.mark.parametrize('case', list(CASES))
def test_bad_input(tool, tmp_path, case):
    run_bad_input_case(tool.main, _valid(tmp_path), CASES[case], 'out.json')


def test_negative_seed_is_an_argparse_error(tool, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        tool.main(_inst(_valid(tmp_path), '--seed', '-1'))
    assert e.value.code == 2 and re.search('--seed must be >= 0', capsys.readouterr().err)


def test_valid_cases(tool, tmp_path):
    root = _valid(tmp_path)
    assert tool.main(_inst(root))['prompts'] == 1
    assert tool.main(_pan(root))['prompts'] == 2
