"""Bad inputs to tools/dataset_converters/davis_to_index.py: an error naming the folder /
sequence / PNG, nothing written."""
import contextlib
import re

import numpy as np
import pytest
from PIL import Image

from tests.conftest import load_script

from .test_bad_inputs_eval_davis import H, W, davis_root

ANN = 'Annotations/480p/s'


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/dataset_converters/davis_to_index.py')


def _argv(root, *extra):
    return [str(root), str(root / 'index.json'), '--split', 'val', *extra]


CASES = {
    'root missing': (lambda r: None, ['{root}/nope', '{root}/i.json'], FileNotFoundError,
                     'DAVIS root not found: .*nope'),
    'root a file': (lambda r: (r / 'f').write_text('x'), ['{root}/f', '{root}/i.json'],
                    ValueError, 'DAVIS root .*f is not a folder'),
    'split file missing': (lambda r: None, ['--split', 'train'], FileNotFoundError,
                           'DAVIS split file not found: .*2017/train.txt'),
    'sequence folder missing': (lambda r: (r / 'ImageSets' / '2017' / 'val.txt').write_text(
        's\nghost\n'), [], FileNotFoundError, 'DAVIS sequence folder not found: .*ghost'),
    'sequence without frames': (lambda r: [p.unlink() for p in (r / 'JPEGImages/480p/s').iterdir()],
                                [], ValueError, 'DAVIS sequence has no frames'),
    'annotation missing': (lambda r: (r / ANN / '00002.png').unlink(), [], FileNotFoundError,
                           r'DAVIS annotation not found: .*00002.png \(1 frame'),
    'annotation corrupt': (lambda r: (r / ANN / '00002.png').write_bytes(b'garbage'), [],
                           ValueError, '00002.png: DAVIS mask cannot be decoded'),
    'annotation truncated': (lambda r: (r / ANN / '00002.png').write_bytes(
        (r / ANN / '00002.png').read_bytes()[:70]), [], ValueError, '00002.png: DAVIS mask cannot'),
    'annotation RGB': (lambda r: Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(
        r / ANN / '00002.png'), [], ValueError, '00002.png: DAVIS masks are single-channel'),
    '2016 on palette masks': (lambda r: (r / 'ImageSets' / '2016').mkdir() or
                              (r / 'ImageSets' / '2016' / 'val.txt').write_text('s\n'),
                              ['--year', '2016'], ValueError,
                              'a binary \\(DAVIS 2016\\) mask must hold only 0 and 255'),
    'out_file a folder': (lambda r: (r / 'o').mkdir(), ['{root}', '{root}/o'], ValueError,
                          'out_file .*o is an existing folder'),
    'every sequence skipped': (lambda r: (r / ANN / '00002.png').unlink(), ['--skip-bad'],
                               ValueError, 'no usable video'),
}


@pytest.mark.parametrize('case', list(CASES))
def test_bad_input(tool, tmp_path, case):
    root = davis_root(tmp_path)
    mutate, extra, error, match = CASES[case]
    mutate(root)
    extra = [e.replace('{root}', str(root)) for e in extra]
    argv = _argv(root)
    if extra and not extra[0].startswith('--'):  # other positional arguments
        argv[:2], extra = extra[:2], extra[2:]
    with (pytest.warns(UserWarning) if "--skip-bad" in extra else contextlib.nullcontext()):
        with pytest.raises(error, match=match):
            tool.main(argv + extra)
    assert not (root / 'index.json').exists()


def test_unknown_year_is_an_argparse_error(tool, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        tool.main(_argv(davis_root(tmp_path), '--year', '2018'))
    assert e.value.code == 2 and re.search("invalid choice: '2018'", capsys.readouterr().err)


def test_valid_case(tool, tmp_path):
    assert tool.main(_argv(davis_root(tmp_path)))['frames'] == 4
