"""Bad COCO panoptic jsons / prompt files to CocoPanopticSegDataset and
CocoPanopticPromptFileDataset: an error naming the file / record / key when the dataset is built,
not a bare KeyError inside mmdet, a NaN box silently dropped or a missing PNG found mid-training."""
import json

import numpy as np
import pytest
from PIL import Image

from seg.datasets.converters import coco_to_interactive_prompts
from seg.evaluation.panoptic_quality import write_panoptic_png
from seg.registry import DATASETS

H, W = 20, 30
METAINFO = dict(classes=('cat', 'sky'), thing_classes=('cat', ), stuff_classes=('sky', ))


def _valid(root):
    (root / 'img').mkdir()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / 'img' / 'a.jpg')
    ids = np.zeros((H, W), np.int64)
    ids[2:10, 4:14] = 3
    ids[12:] = 4
    write_panoptic_png(ids, root / 'pan' / 'a.png')
    (root / 'pan.json').write_text(json.dumps({
        'images': [{'id': 1, 'file_name': 'a.jpg', 'height': H, 'width': W}],
        'categories': [{'id': 1, 'name': 'cat', 'isthing': 1}, {'id': 2, 'name': 'sky', 'isthing': 0}],
        'annotations': [{'image_id': 1, 'file_name': 'a.png', 'segments_info': [
            {'id': 3, 'category_id': 1, 'iscrowd': 0, 'area': 80, 'bbox': [4, 2, 10, 8]},
            {'id': 4, 'category_id': 2, 'iscrowd': 0, 'area': 240, 'bbox': [0, 12, 30, 8]}]}]}))
    return root


def _dataset(root, **kwargs):
    return DATASETS.build(dict(type='CocoPanopticSegDataset', data_root=str(root),
                               ann_file='pan.json', data_prefix=dict(img='img/', seg='pan/'),
                               metainfo=METAINFO, pipeline=[], **kwargs))


def _edit(fn):
    def mutate(root):
        data = json.loads((root / 'pan.json').read_text())
        fn(data)
        (root / 'pan.json').write_text(json.dumps(data))
    return mutate


def _seg(fn):
    return _edit(lambda d: fn(d['annotations'][0]['segments_info'][0]))


CASES = {
    'json missing': (lambda r: (r / 'pan.json').unlink(), FileNotFoundError,
                     'COCO annotation file not found: .*pan.json'),
    'json truncated': (lambda r: (r / 'pan.json').write_text('{"images": ['), ValueError,
                       'pan.json is not valid JSON'),
    'NaN bbox': (lambda r: (r / 'pan.json').write_text((r / 'pan.json').read_text().replace(
        '[4, 2, 10, 8]', '[4, 2, NaN, 8]')), ValueError, "non-finite number 'NaN'"),
    'image without height': (_edit(lambda d: d['images'][0].pop('height')), ValueError,
                             r"image 1 lacks the key\(s\) \['height'\]"),
    'segment without bbox': (_seg(lambda s: s.pop('bbox')), ValueError,
                             r"segment 0 lacks the key\(s\) \['bbox'\]"),
    'segment without area': (_seg(lambda s: s.pop('area')), ValueError,
                             r"segment 0 lacks the key\(s\) \['area'\]"),
    'negative bbox width': (_seg(lambda s: s.update(bbox=[4, 2, -10, 8])), ValueError,
                            'segment 3 "bbox" must be finite with width and height >= 0'),
    'iscrowd 2': (_seg(lambda s: s.update(iscrowd=2)), ValueError, '"iscrowd" must be 0 or 1'),
    'category without isthing': (_edit(lambda d: d['categories'][0].pop('isthing')), ValueError,
                                 r"category 0 lacks the key\(s\) \['isthing'\]"),
    'annotation of a missing image': (_edit(lambda d: d['annotations'][0].update(image_id=5)),
                                      ValueError, '"image_id" is 5, which is not the id of any'),
    'segment of a missing category': (_seg(lambda s: s.update(category_id=9)), ValueError,
                                      '"category_id" is 9, which is not the id of any category'),
    'image file missing': (lambda r: (r / 'img' / 'a.jpg').unlink(), FileNotFoundError,
                           r'pan.json: 1 file\(s\) it names are missing, e.g. .*img/a.jpg'),
    'panoptic PNG missing': (lambda r: (r / 'pan' / 'a.png').unlink(), FileNotFoundError,
                             'missing, e.g. .*pan/a.png'),
    'category not in metainfo': (_edit(lambda d: d['categories'][0].update(name='dog')),
                                 ValueError, 'category id 1, which is not among'),
    'no segment at all': (_edit(lambda d: d['annotations'][0].update(segments_info=[])),
                          ValueError, 'the annotation list is empty'),
}


@pytest.mark.parametrize('case', list(CASES))
def test_bad_panoptic_json(tmp_path, case):
    root = _valid(tmp_path)
    mutate, error, match = CASES[case]
    mutate(root)
    with pytest.raises(error, match=match):
        _dataset(root)


@pytest.fixture
def prompt_root(tmp_path):
    root = _valid(tmp_path)
    coco_to_interactive_prompts(str(root / 'pan.json'), str(root / 'p.json'),
                                panoptic_dir=str(root / 'pan'))
    return root


def _prompt_dataset(root):
    return DATASETS.build(dict(type='CocoPanopticPromptFileDataset', prompt_file=str(root / 'p.json'),
                               data_root=str(root), ann_file='pan.json',
                               data_prefix=dict(img='img/', seg='pan/'), metainfo=METAINFO,
                               pipeline=[]))


def _prompt(fn):
    def mutate(root):
        data = json.loads((root / 'p.json').read_text())
        fn(data)
        (root / 'p.json').write_text(json.dumps(data))
    return mutate


PROMPT_CASES = {
    'missing': (lambda r: (r / 'p.json').unlink(), FileNotFoundError,
                'interactive prompt file not found'),
    'truncated': (lambda r: (r / 'p.json').write_text('{"format": "fastsam2-'), ValueError,
                  'p.json is not valid JSON'),
    'another format': (lambda r: (r / 'p.json').write_text('{"format": "x"}'), ValueError,
                       'is not a FastSAM2 interactive prompt file'),
    'no source': (_prompt(lambda d: d.pop('source')), ValueError,
                  r"p.json lacks the key\(s\) \['source'\]"),
    'prompts not a list': (_prompt(lambda d: d.update(prompts={})), ValueError,
                           '"prompts" must be a JSON list'),
    'prompt without points': (_prompt(lambda d: d['prompts'][0].pop('points')), ValueError,
                              r"prompt 0 lacks the key\(s\) \['points'\]"),
    'NaN point': (lambda r: (r / 'p.json').write_text(
        (r / 'p.json').read_text().replace('"points": [[', '"points": [[NaN, ', 1)), ValueError,
        "non-finite number 'NaN'"),
    'point of 3 values': (_prompt(lambda d: d['prompts'][0].update(points=[[1, 2, 3]],
                                                                   point_labels=[1])),
                          ValueError, r'prompt 0: "points" must be \[P, 2\]'),
    'label 2': (_prompt(lambda d: d['prompts'][0].update(
        point_labels=[2] * len(d['prompts'][0]['points']))), ValueError,
        r'prompt 0 "point_labels" must be 1 \(positive\) or 0 \(negative\), got \[2\]'),
    'box of 3 values': (_prompt(lambda d: d['prompts'][0].update(box=[1, 2, 3])), ValueError,
                        r'prompt 0: "box" must be \[x1, y1, x2, y2\]'),
    'ann id a string': (_prompt(lambda d: d['prompts'][0].update(ann_id='3')), TypeError,
                        'prompt 0 "ann_id" must be an int'),
    'no prompt of these images': (_prompt(lambda d: [p.update(image_id=9) for p in d['prompts']]),
                                  ValueError, 'no prompt belongs to an image'),
}


@pytest.mark.parametrize('case', list(PROMPT_CASES))
def test_bad_prompt_file(prompt_root, case):
    mutate, error, match = PROMPT_CASES[case]
    mutate(prompt_root)
    with pytest.raises(error, match=match):
        _prompt_dataset(prompt_root)


def test_valid_files(prompt_root):
    assert len(_dataset(prompt_root)) == 1
    rows = _prompt_dataset(prompt_root).get_data_info(0)['stored_prompts']
    assert sorted(r['ann_id'] for r in rows) == [3, 4]
