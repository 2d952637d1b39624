"""Bad inputs to the demo (``demo/demo.py`` via ``seg.apis.demo_runner``), checked before any
model is built: a ``DemoInputError`` naming the flag / file / entry / key."""

import numpy as np
import pytest
from PIL import Image

from seg.apis.demo_runner import (
    DemoInputError,
    PromptSpec,
    check_specs,
    load_prompts_file,
    parse_cli_prompts,
    parse_prompt_entry,
    parse_prompt_line,
)
from tests.conftest import load_script

HW = (48, 64)


@pytest.fixture(scope='module')
def demo():
    return load_script('demo/demo.py')


BAD_ENTRIES = [
    ([1], 'JSON object'),
    ({'obj_id': 0, 'points': [[1, 1]]}, r'"obj_id" must be >= 1 and <= 254, got 0'),
    ({'obj_id': 255, 'points': [[1, 1]]}, 'got 255'),
    ({'obj_id': 1.5, 'points': [[1, 1]]}, '"obj_id" must be an int'),
    ({'obj_id': True, 'points': [[1, 1]]}, '"obj_id" must be an int'),
    ({'points': [[1, 1]]}, '"obj_id" must be an int'),
    ({'obj_id': 1, 'frame': -1, 'points': [[1, 1]]}, '"frame" must be >= 0'),
    ({'obj_id': 1, 'points': [[1, 1, 1]]}, r'"points" must be \[\[x, y\]'),
    ({'obj_id': 1, 'points': []}, r'"points" must be \[\[x, y\]'),
    ({'obj_id': 1, 'points': [['a', 1]]}, 'must hold numbers'),
    ({'obj_id': 1, 'points': [[1, 1]], 'labels': [2]}, r'"labels" must be 1 \(positive\)'),
    ({'obj_id': 1, 'points': [[1, 1]], 'labels': [1, 0]}, 'for each of the 1 points'),
    ({'obj_id': 1, 'points': [[1, 1]], 'labels': [0.5]}, 'integers'),
    ({'obj_id': 1, 'labels': [1]}, 'without "points"'),
    ({'obj_id': 1, 'box': [1, 2, 3]}, r'"box" must be \[x1, y1, x2, y2\]'),
    ({'obj_id': 1, 'box': [5, 5, 1, 1]}, 'x2 >= x1'),
    ({'obj_id': 1, 'text': 3}, '"text" must be a non-empty string'),
    ({'obj_id': 1, 'mask': 'missing.png'}, 'not found'),
    ({'obj_id': 1}, 'no prompt'),
    ({'obj_id': 1, 'pointz': [[1, 1]]}, 'unknown keys'),
]


@pytest.mark.parametrize('entry,match', BAD_ENTRIES)
def test_bad_prompt_entries(entry, match, tmp_path):
    with pytest.raises(DemoInputError, match=match):
        parse_prompt_entry(entry, 'p.json entry 0', HW, tmp_path)


@pytest.mark.parametrize('line,match', [
    ('{"obj_id": 1, "points": [[NaN, 1]]}', 'non-finite'),
    ('{"obj_id": 1, "points": [[Infinity, 1]]}', 'non-finite'),
    ('{"obj_id": oops}', 'not valid JSON'),
])
def test_bad_stdin_lines(line, match):
    with pytest.raises(DemoInputError, match=match):
        parse_prompt_line(line, 'stdin line 1', HW)


@pytest.mark.parametrize('text,match', [('', 'empty'), ('{"obj_id": 1}', 'expected a JSON list'),
                                        ('[{"obj_id": 1, "box": [0, 0, NaN, 1]}]', 'non-finite'),
                                        ('[{', 'not valid JSON')])
def test_bad_prompt_files(tmp_path, text, match):
    path = tmp_path / 'prompts.json'
    path.write_text(text)
    with pytest.raises(DemoInputError, match=match):
        load_prompts_file(path, HW)


@pytest.mark.parametrize('points,boxes,match', [
    ('1,2', None, 'expected x,y,label'), ('nan,2,1', None, 'expected x,y,label'),
    ('1,2,5', None, 'the label must be 1'), (None, '1,2,3', 'expected x1,y1,x2,y2'),
    ('1,2,1; 3,4,1', '1,1,5,5', 'same number of objects'), ('-', None, 'no prompt'),
])
def test_bad_cli_prompts(points, boxes, match):
    with pytest.raises(DemoInputError, match=match):
        parse_cli_prompts(points=points, boxes=boxes)


def test_points_outside_rejected_just_outside_clipped():
    with pytest.raises(DemoInputError, match='object 1: point .* lies outside the image'):
        check_specs([PromptSpec(obj_id=1, points=[[500, 5]], labels=[1], where='object 1')], HW)
    spec = PromptSpec(obj_id=1, points=[[65, -1]], labels=[1], box=[-1, 0, 64.5, 48], where='o')
    check_specs([spec], HW)
    assert spec.points == [[64.0, 0.0]] and spec.box == [0.0, 0.0, 64.0, 48.0]
    with pytest.raises(DemoInputError, match='past the end of the video'):
        check_specs([PromptSpec(obj_id=1, frame=9, points=[[1, 1]], labels=[1])], HW, 3)


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp('demo_images')
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(
        d / 'ok.png')
    data = (d / 'ok.png').read_bytes()
    (d / 'truncated.png').write_bytes(data[:len(data) // 2])
    (d / 'empty.jpg').write_bytes(b'')
    return d


@pytest.mark.parametrize('name,max_pixels,match', [
    ('missing.jpg', 10 ** 6, 'not found'), ('empty.jpg', 10 ** 6, 'empty'),
    ('truncated.png', 10 ** 6, 'corrupt or truncated'), ('ok.png', 100, 'above the cap of 100'),
    ('.', 10 ** 6, 'folder'),
])
def test_bad_input_images(demo, images, name, max_pixels, match):
    with pytest.raises(DemoInputError, match=match):
        demo.read_image(str(images / name), max_pixels)


def test_max_input_pixels_flag_is_checked(demo, images):
    args = demo.build_parser().parse_args([str(images / 'ok.png'), '--config', 'c.py', '--task',
                                           'panoptic', '--max-input-pixels', '100'])
    with pytest.raises(DemoInputError, match='above the cap of 100 input pixels'):
        demo.run(args)
