"""Bad inputs to tools/evaluation/eval_coco_panoptic.py: every one is an error naming the file /
key / value (the ``seg.utils.validation`` policy), never a bare KeyError or a silent rc 0."""
import json

import numpy as np
import pytest
from PIL import Image

from seg.evaluation.panoptic_quality import write_panoptic_png
from tests.conftest import load_script

CATS = [{'id': 1, 'name': 'a', 'isthing': 1}, {'id': 2, 'name': 'b', 'isthing': 0}]


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/evaluation/eval_coco_panoptic.py')


def _valid(root):
    """A GT and an identical prediction: one 8x8 image, segments 1 (thing) and 2 (stuff)."""
    ids = np.zeros((8, 8), np.int64)
    ids[:4] = 1
    ids[4:, :4] = 2
    segs = [{'id': 1, 'category_id': 1, 'iscrowd': 0, 'area': 32},
            {'id': 2, 'category_id': 2, 'iscrowd': 0, 'area': 16}]
    for name in ('gt', 'pred'):
        write_panoptic_png(ids, root / name / 'x.png')
        (root / f'{name}.json').write_text(json.dumps(
            {'images': [{'id': 1, 'file_name': 'x.jpg'}], 'categories': CATS,
             'annotations': [{'image_id': 1, 'file_name': 'x.png', 'segments_info': segs}]}))
    (root / 'cats.json').write_text(json.dumps(CATS))
    return ['--gt-json', str(root / 'gt.json'), '--gt-folder', str(root / 'gt'),
            '--pred-json', str(root / 'pred.json'), '--pred-folder', str(root / 'pred'),
            '--out', str(root / 'm.json')]


def _edit(root, name, fn):
    data = json.loads((root / name).read_text())
    fn(data)
    (root / name).write_text(json.dumps(data))


def _seg(key, value, which='gt.json'):
    return lambda r: _edit(r, which, lambda d: d['annotations'][0]['segments_info'][0].update(
        {key: value}))


CASES = {
    'gt json missing': (lambda r: (r / 'gt.json').unlink(), FileNotFoundError,
                        'GT json not found: .*gt.json'),
    'gt json empty': (lambda r: (r / 'gt.json').write_text(''), ValueError, 'gt.json is empty'),
    'gt json truncated': (lambda r: (r / 'gt.json').write_text((r / 'gt.json').read_text()[:40]),
                          ValueError, 'gt.json is not valid JSON'),
    'gt json NaN token': (lambda r: (r / 'gt.json').write_text(
        (r / 'gt.json').read_text().replace('"area": 32', '"area": NaN')), ValueError,
        "gt.json is not valid JSON: non-finite number 'NaN'"),
    'gt json a list': (lambda r: (r / 'gt.json').write_text('[]'), ValueError,
                       'gt.json: expected a JSON dict, got list'),
    'gt json without annotations': (lambda r: _edit(r, 'gt.json', lambda d: d.pop('annotations')),
                                    ValueError, r"gt.json lacks the key\(s\) \['annotations'\]"),
    'annotations not a list': (lambda r: _edit(r, 'gt.json', lambda d: d.update(annotations={})),
                               ValueError, 'gt.json: "annotations" must be a JSON list, got dict'),
    'annotation without segments_info': (
        lambda r: _edit(r, 'gt.json', lambda d: d['annotations'][0].pop('segments_info')),
        ValueError, r"gt.json: annotation 0 lacks the key\(s\) \['segments_info'\]"),
    'empty gt annotations': (lambda r: _edit(r, 'gt.json', lambda d: d.update(annotations=[])),
                             ValueError, 'gt.json: the annotation list is empty'),
    'duplicate image annotation': (
        lambda r: _edit(r, 'pred.json', lambda d: d['annotations'].append(d['annotations'][0])),
        ValueError, 'pred.json: two annotations for image 1'),
    'prediction missing for an image': (
        lambda r: _edit(r, 'pred.json', lambda d: d['annotations'][0].update(image_id=7)),
        KeyError, 'pred.json: no prediction for image 1'),
    'gt PNG missing': (lambda r: (r / 'gt' / 'x.png').unlink(), FileNotFoundError,
                       'panoptic PNG not found: .*gt/x.png'),
    'gt PNG corrupt': (lambda r: (r / 'gt' / 'x.png').write_bytes(b'not a png at all'),
                       ValueError, 'panoptic PNG .*gt/x.png cannot be read as an image'),
    'gt PNG truncated': (lambda r: (r / 'gt' / 'x.png').write_bytes(
        (r / 'gt' / 'x.png').read_bytes()[:60]), ValueError, 'gt/x.png'),
    'gt PNG single-channel': (lambda r: Image.fromarray(np.zeros((8, 8), np.uint8)).save(
        r / 'gt' / 'x.png'), ValueError, r'gt/x.png: COCO panoptic PNGs are RGB .* shape \(8, 8\)'),
    'pred PNG of another size': (lambda r: write_panoptic_png(np.ones((4, 8), np.int64),
                                                              r / 'pred' / 'x.png'),
                                 ValueError, r'GT PNG has shape \(8, 8\), the prediction \(4, 8\)'),
    'gt folder missing': (lambda r: [p.unlink() for p in (r / 'gt').iterdir()] and
                          (r / 'gt').rmdir(), FileNotFoundError, 'GT PNG folder not found'),
    'unknown category id': (_seg('category_id', 9), KeyError,
                            r'GT category ids \[9\] are not in the categories'),
    'segment id a string': (_seg('id', 'one'), TypeError,
                            'GT segment "id" must be an int, got \'one\''),
    'segment id out of range': (_seg('id', 2**24), ValueError, 'GT segment "id" must be >= 0'),
    'negative area': (_seg('area', -3), ValueError, 'segment 1 has "area" -3, expected a number'),
    'iscrowd not 0/1': (_seg('iscrowd', 2), ValueError, 'segment 1 has "iscrowd" 2, expected 0'),
    'segment lacks iscrowd': (lambda r: _edit(r, 'gt.json', lambda d: d['annotations'][0][
        'segments_info'][0].pop('iscrowd')), KeyError, r"lacks \['iscrowd'\]"),
    'segment not an object': (lambda r: _edit(r, 'gt.json', lambda d: d['annotations'][0].update(
        segments_info=[3])), ValueError, 'GT segment 3 is not a JSON object'),
    'prediction segment not in its PNG': (
        lambda r: _edit(r, 'pred.json', lambda d: d['annotations'][0]['segments_info'].append(
            {'id': 5, 'category_id': 1})), KeyError, r'segment ids \[5\] are in segments_info'),
    'categories lack isthing': (lambda r: _edit(r, 'gt.json', lambda d: d['categories'][0].pop(
        'isthing')), KeyError, 'category .* lacks "id" or "isthing"'),
    'category id listed twice': (lambda r: _edit(r, 'gt.json', lambda d: d['categories'].append(
        CATS[0])), ValueError, 'category id 1 is listed twice'),
    'no categories': (lambda r: _edit(r, 'gt.json', lambda d: d.pop('categories')), KeyError,
                      'has no "categories"; pass a categories json'),
}


@pytest.mark.parametrize('case', list(CASES))
def test_bad_input(tool, tmp_path, case):
    argv = _valid(tmp_path)
    mutate, error, match = CASES[case]
    mutate(tmp_path)
    with pytest.raises(error, match=match):
        tool.main(argv)
    assert not (tmp_path / 'm.json').exists()


@pytest.mark.parametrize('extra,error,match', [
    (['--categories', 'nope.json'], FileNotFoundError, 'categories json not found: nope.json'),
    (['--categories', '{cats}'], KeyError, 'no categories'),  # a json without categories
    (['--out', '{root}'], ValueError, 'is an existing folder, expected a file'),
])
def test_bad_arguments(tool, tmp_path, extra, error, match):
    argv = _valid(tmp_path)
    (tmp_path / 'nocats.json').write_text('{"x": 1}')
    extra = [e.format(cats=tmp_path / 'nocats.json', root=tmp_path) for e in extra]
    with pytest.raises(error, match=match):
        tool.main(argv + extra)


def test_missing_required_argument_is_an_argparse_error(tool, tmp_path):
    with pytest.raises(SystemExit) as e:
        tool.main(_valid(tmp_path)[:-2])  # no --out
    assert e.value.code == 2


def test_valid_case_scores_one(tool, tmp_path):
    result = tool.main(_valid(tmp_path))
    assert result['All']['pq'] == 1.0 and result['All']['n'] == 2
