"""Bad inputs to tools/dataset_converters/ytvis_to_interactive_clips.py: the json cases the
dataset rejects (same checks, ``annotation_checks.load_ytvis_json``) plus the converter's own."""
import json
import re

import pytest

from tests.conftest import load_script
from tests.test_datasets.test_bad_inputs_youtube_vis import JSON_CASES, valid_ytvis, write_case


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/dataset_converters/ytvis_to_interactive_clips.py')


def _argv(root, *extra):
    return [str(root / 'a.json'), str(root / 'c.pkl'), '--clip-length', '2', '3', *extra]


@pytest.mark.parametrize('case', list(JSON_CASES))
def test_bad_json(tool, tmp_path, case):
    write_case(tmp_path / 'a.json', case)
    _, error, match = JSON_CASES[case]
    with pytest.raises(error, match=match):
        tool.main(_argv(tmp_path))
    assert not (tmp_path / 'c.pkl').exists()


def _write(root, fn):
    data = valid_ytvis()
    fn(data)
    (root / 'a.json').write_text(json.dumps(data))


@pytest.mark.parametrize('edit,extra,error,match', [
    (None, ['{root}/nope.json'], FileNotFoundError, 'YouTube-VIS annotation file not found'),
    (lambda d: d['annotations'][0]['segmentations'].pop(), [], ValueError,
     'annotation 1 has 2 segmentations for 3 frames'),
    (lambda d: d.update(annotations=[]), [], ValueError, 'the annotation list is empty'),
    (lambda d: d['videos'][0].update(file_names=[]), [], ValueError, 'video 1 has no frames'),
    (None, ['--clip-length', '5', '2'], ValueError, 'clip_length'),
    (None, ['--stride', '0', '1'], ValueError, 'stride'),
    (None, ['--out-is-dir'], ValueError, 'out_file .* is an existing folder'),
])
def test_converter_specific(tool, tmp_path, edit, extra, error, match):
    _write(tmp_path, edit or (lambda d: None))
    argv = _argv(tmp_path)
    if extra == ['--out-is-dir']:
        (tmp_path / 'c.pkl').mkdir()
        extra = []
    elif extra and extra[0].startswith('{root}'):
        argv[0] = extra.pop(0).replace('{root}', str(tmp_path))
    with pytest.raises(error, match=match):
        tool.main(argv + extra)
    assert not (tmp_path / 'c.pkl').is_file()


@pytest.mark.parametrize('extra,match', [(['--seed', '-2'], '--seed must be >= 0'),
                                         (['--extra-key-frames', '-1'], '--extra-key-frames must be >= 0')])
def test_bad_flags_are_argparse_errors(tool, tmp_path, capsys, extra, match):
    _write(tmp_path, lambda d: None)
    with pytest.raises(SystemExit) as e:
        tool.main(_argv(tmp_path, *extra))
    assert e.value.code == 2 and re.search(match, capsys.readouterr().err)


def test_valid_case(tool, tmp_path):
    _write(tmp_path, lambda d: None)
    assert tool.main(_argv(tmp_path))['clips'] >= 1 and (tmp_path / 'c.pkl').is_file()
