"""Bad inputs to tools/evaluation/vos_baselines.py: errors naming the frame / mask / flag."""
import numpy as np
import pytest
from PIL import Image

from seg.evaluation.davis import write_davis_png
from tests.conftest import load_script

from .test_bad_inputs_eval_davis import H, W, davis_root

SEQ = 'JPEGImages/480p/s'


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/evaluation/vos_baselines.py')


def _argv(root, *extra):
    return ['--davis-root', str(root), '--out-dir', str(root / 'out'), '--methods', 'copy',
            *extra]


def _first_png(root):
    return root / 'Annotations' / '480p' / 's' / '00000.png'


CASES = {
    'davis root missing': (lambda r: None, ['--davis-root', '{root}/nope'], FileNotFoundError,
                           '--davis-root not found'),
    'no image set': (lambda r: (r / 'ImageSets' / '2017' / 'val.txt').unlink(), [],
                     FileNotFoundError, 'DAVIS image set not found'),
    'sequence without frames': (lambda r: [p.unlink() for p in (r / SEQ).iterdir()], [],
                                FileNotFoundError, 'no JPEG frame in .*480p/s'),
    'corrupt frame': (lambda r: (r / SEQ / '00002.jpg').write_bytes(b'garbage'), [],
                      ValueError, 'frame .*00002.jpg cannot be read as an image'),
    'truncated frame': (lambda r: (r / SEQ / '00002.jpg').write_bytes(
        (r / SEQ / '00002.jpg').read_bytes()[:200]), [], ValueError,
        'frame .*00002.jpg is corrupt or truncated'),
    'frames of two sizes': (lambda r: Image.fromarray(np.zeros((H, W + 2, 3), np.uint8)).save(
        r / SEQ / '00003.jpg'), [], ValueError, '00003.jpg is .* a video has one frame size'),
    'first mask missing': (lambda r: _first_png(r).unlink(), [], FileNotFoundError,
                           'DAVIS mask not found: .*00000.png'),
    'first mask of another size': (lambda r: write_davis_png(np.ones((8, 8), np.uint8),
                                                             _first_png(r)), [], ValueError,
                                   r'00000.png is \(8, 8\), the frame \(16, 24\)'),
    'first mask empty': (lambda r: write_davis_png(np.zeros((H, W), np.uint8), _first_png(r)), [],
                         ValueError, 'the first frame has no object to propagate'),
    'first mask corrupt': (lambda r: _first_png(r).write_bytes(b'garbage'), [], ValueError,
                           '00000.png: DAVIS mask cannot be decoded'),
    'sequence twice': (lambda r: None, ['--sequences', 's', 's'], ValueError, 'twice'),
    '--out-dir is a file': (lambda r: (r / 'out').write_text('x'), [], ValueError,
                            'is an existing file, expected a folder'),
}


@pytest.mark.parametrize('case', list(CASES))
def test_bad_input(tool, tmp_path, case):
    root = davis_root(tmp_path)
    mutate, extra, error, match = CASES[case]
    mutate(root)
    with pytest.raises(error, match=match):
        tool.main(_argv(root) + [e.format(root=root) for e in extra])
    assert not (root / 'out' / 'metrics.json').exists()


def test_unknown_method_is_an_argparse_error(tool, tmp_path):
    with pytest.raises(SystemExit) as e:
        tool.main(_argv(davis_root(tmp_path)) + ['--methods', 'magic'])
    assert e.value.code == 2


def test_valid_case_copy_baseline(tool, tmp_path):
    metrics = tool.main(_argv(davis_root(tmp_path)))
    assert 0 < metrics['copy']['J&F-Mean'] < 1  # object 1 moves, the copied mask lags
