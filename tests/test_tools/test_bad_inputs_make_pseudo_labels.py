"""Bad inputs to tools/dataset_converters/make_pseudo_labels.py: rejected before the teacher
runs (flags and paths before it is even built), naming the flag / file / record."""
import json
import re

import numpy as np
import pytest
from PIL import Image

from tests.conftest import load_script

H, W = 24, 32


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/dataset_converters/make_pseudo_labels.py')


class NeverCalled:
    def __call__(self, *args, **kwargs):
        raise AssertionError('the teacher ran on a bad input')


def _valid(root):
    (root / 'images').mkdir()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / 'images' / 'a.jpg')
    (root / 'boxes.json').write_text(json.dumps({
        'images': [{'id': 1, 'file_name': 'a.jpg'}],
        'annotations': [{'id': 1, 'image_id': 1, 'category_id': 1, 'bbox': [2, 3, 10, 8]}]}))
    return root


def _boxes(fn):
    def mutate(root):
        data = json.loads((root / 'boxes.json').read_text())
        fn(data)
        (root / 'boxes.json').write_text(json.dumps(data))
    return mutate


CASES = {
    'image folder missing': (lambda r: [p.unlink() for p in (r / 'images').iterdir()] and
                             (r / 'images').rmdir(), FileNotFoundError, 'image folder not found'),
    'boxes json missing': (lambda r: (r / 'boxes.json').unlink(), FileNotFoundError,
                           '--boxes json not found'),
    'boxes json truncated': (lambda r: (r / 'boxes.json').write_text('{"images": [{'), ValueError,
                             'boxes.json is not valid JSON'),
    'NaN box': (lambda r: (r / 'boxes.json').write_text((r / 'boxes.json').read_text().replace(
        '[2, 3, 10, 8]', '[2, 3, NaN, 8]')), ValueError, "non-finite number 'NaN'"),
    'no images key': (_boxes(lambda d: d.pop('images')), ValueError,
                      r"lacks the key\(s\) \['images'\]"),
    'no image': (_boxes(lambda d: d.update(images=[], annotations=[])), ValueError,
                 'boxes.json: the image list is empty'),
    'image without file_name': (_boxes(lambda d: d['images'][0].pop('file_name')), ValueError,
                                r"image 0 lacks the key\(s\) \['file_name'\]"),
    'image id twice': (_boxes(lambda d: d['images'].append(d['images'][0])), ValueError,
                       'id 1 is used twice'),
    'annotation of a missing image': (_boxes(lambda d: d['annotations'][0].update(image_id=4)),
                                      ValueError, '"image_id" is 4, which is not the id of any image'),
    'annotation without bbox': (_boxes(lambda d: d['annotations'][0].pop('bbox')), ValueError,
                                r"annotation 0 lacks the key\(s\) \['bbox'\]"),
    'negative box width': (_boxes(lambda d: d['annotations'][0].update(bbox=[2, 3, -1, 8])),
                           ValueError, 'must be finite with width and height >= 0'),
    'box of 2 values': (_boxes(lambda d: d['annotations'][0].update(bbox=[2, 3])), ValueError,
                        r'must be \[x, y, w, h\]'),
    'image file missing': (lambda r: (r / 'images' / 'a.jpg').unlink(), FileNotFoundError,
                           'image not found: .*a.jpg'),
    'image corrupt': (lambda r: (r / 'images' / 'a.jpg').write_bytes(b'garbage'), ValueError,
                      'image .*a.jpg cannot be read as an image'),
    'image truncated': (lambda r: (r / 'images' / 'a.jpg').write_bytes(
        (r / 'images' / 'a.jpg').read_bytes()[:120]), ValueError, 'a.jpg is corrupt or truncated'),
    'listed size differs': (_boxes(lambda d: d['images'][0].update(height=5, width=5)), ValueError,
                            'image a.jpg is listed as 5x5 but is 32x24'),
}


@pytest.mark.parametrize('case', list(CASES))
def test_bad_coco_input(tool, tmp_path, case):
    root = _valid(tmp_path)
    mutate, error, match = CASES[case]
    mutate(root)
    with pytest.raises(error, match=match):
        tool.coco_pseudo_labels(NeverCalled(), str(root / 'images'), str(root / 'out.json'),
                                boxes_file=str(root / 'boxes.json'))
    assert not (root / 'out.json').exists()


TEACHER = ['--allow-random-init']


@pytest.mark.parametrize('argv,match', [
    (['coco', '{root}/images', '{root}/o.json', '--points-per-side', '0', *TEACHER],
     '--points-per-side must be >= 1'),
    (['coco', '{root}/images', '{root}/o.json', '--min-iou', '1.5', *TEACHER],
     r'--min-iou must be in \[0, 1\], got 1.5'),
    (['coco', '{root}/images', '{root}/o.json', '--nms-iou', '-0.1', *TEACHER], '--nms-iou'),
    (['coco', '{root}/images', '{root}/o.json', '--teacher-image-size', '0', *TEACHER],
     '--teacher-image-size must be >= 1'),
    (['coco', '{root}/images', '{root}/o.json', '--dtype', 'fp8', *TEACHER], 'invalid choice'),
    (['davis', '{root}', '{root}/o'], '--teacher-checkpoint is required'),
])
def test_bad_flags_are_argparse_errors(tool, tmp_path, capsys, argv, match):
    root = _valid(tmp_path)
    with pytest.raises(SystemExit) as e:
        tool.main([a.replace('{root}', str(root)) for a in argv])
    assert e.value.code == 2 and re.search(match, capsys.readouterr().err)


@pytest.mark.parametrize('argv,error,match', [
    (['coco', '{root}/nope', '{root}/o.json'], FileNotFoundError, 'image folder not found'),
    (['coco', '{root}/images', '{root}/images'], ValueError, 'output json .* is an existing folder'),
    (['davis', '{root}/nope', '{root}/o'], FileNotFoundError, 'DAVIS root not found'),
    (['davis', '{root}', '{root}/boxes.json'], ValueError, 'output root .* is an existing file'),
])
def test_bad_paths_fail_before_the_teacher_is_built(tool, tmp_path, monkeypatch, argv, error,
                                                     match):
    root = _valid(tmp_path)
    monkeypatch.setattr(tool, 'build_teacher', lambda args: pytest.fail('teacher built'))
    with pytest.raises(error, match=match):
        tool.main([a.replace('{root}', str(root)) for a in argv] + TEACHER)
