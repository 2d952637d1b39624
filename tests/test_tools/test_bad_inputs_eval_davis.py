"""Bad inputs to tools/evaluation/eval_davis.py: each is an error naming the file / sequence /
value, never a bare traceback from inside the reader or a silent result."""
import numpy as np
import pytest
from PIL import Image

from seg.evaluation.davis import write_davis_png
from tests.conftest import load_script

H, W, T = 16, 24, 4


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/evaluation/eval_davis.py')


def davis_root(root, seq='s', frames=True):
    """A DAVIS-2017 root with one sequence of T frames: object 1 moving right, object 2 still;
    ``results/<seq>`` holds the ground truth itself."""
    for t in range(T):
        ids = np.zeros((H, W), np.uint8)
        ids[2:8, 2 + t:8 + t] = 1
        ids[10:14, 14:20] = 2
        write_davis_png(ids, root / 'Annotations' / '480p' / seq / f'{t:05d}.png')
        write_davis_png(ids, root / 'results' / seq / f'{t:05d}.png')
        if frames:
            frame = np.full((H, W, 3), 90, np.uint8)
            frame[ids == 1] = 250
            (root / 'JPEGImages' / '480p' / seq).mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame).save(root / 'JPEGImages' / '480p' / seq / f'{t:05d}.jpg')
    (root / 'ImageSets' / '2017').mkdir(parents=True, exist_ok=True)
    (root / 'ImageSets' / '2017' / 'val.txt').write_text(f'{seq}\n')
    return root


def _res(root, t=1):
    return root / 'results' / 's' / f'{t:05d}.png'


def _argv(root, *extra):
    return ['--davis-root', str(root), '--results', str(root / 'results'), '--out',
            str(root / 'm.json'), *extra]


CASES = {
    'davis root missing': (lambda r: None, ['--davis-root', '{root}/nope'], FileNotFoundError,
                           'DAVIS root not found: .*nope'),
    'results folder missing': (lambda r: None, ['--results', '{root}/nope'], FileNotFoundError,
                               'results folder not found'),
    'results is a file': (lambda r: (r / 'f.txt').write_text('x'), ['--results', '{root}/f.txt'],
                          ValueError, 'results folder .*f.txt is not a folder'),
    'image set missing': (lambda r: None, ['--set', 'test'], FileNotFoundError,
                          'DAVIS image set not found: .*2017/test.txt'),
    'image set empty': (lambda r: (r / 'ImageSets' / '2017' / 'val.txt').write_text('\n'), [],
                        ValueError, 'val.txt lists no sequence'),
    'unknown sequence': (lambda r: None, ['--sequences', 'zzz'], FileNotFoundError,
                         r"no GT annotation folder under .* for \['zzz'\]"),
    'sequence twice': (lambda r: None, ['--sequences', 's', 's'], ValueError, 'distinct'),
    'wrong resolution': (lambda r: None, ['--resolution', '1080p'], FileNotFoundError,
                         'Annotations/1080p'),
    'result frame missing': (lambda r: _res(r).unlink(), [], FileNotFoundError,
                             'DAVIS mask not found: .*results/s/00001.png'),
    'result PNG corrupt': (lambda r: _res(r).write_bytes(b'garbage'), [], ValueError,
                           'results/s/00001.png: DAVIS mask cannot be decoded'),
    'result PNG truncated': (lambda r: _res(r).write_bytes(_res(r).read_bytes()[:70]), [],
                             ValueError, 'results/s/00001.png: DAVIS mask cannot be decoded'),
    'result PNG RGB': (lambda r: Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(_res(r)), [],
                       ValueError, '00001.png: DAVIS masks are single-channel'),
    'result of another size': (lambda r: write_davis_png(np.zeros((8, 8), np.uint8), _res(r)), [],
                               ValueError, r'00001.png: result has shape \(8, 8\)'),
    'result id above the GT objects': (lambda r: write_davis_png(np.full((H, W), 3, np.uint8),
                                                                 _res(r)), [], ValueError,
                                       'object id 3 but the GT of s has 2'),
    'first GT frame empty': (lambda r: write_davis_png(
        np.zeros((H, W), np.uint8), r / 'Annotations' / '480p' / 's' / '00000.png'), [],
        ValueError, '00000.png: the first GT frame has no object id'),
    'too few GT frames': (lambda r: [(r / 'Annotations' / '480p' / 's' / f'{t:05d}.png').unlink()
                                     for t in (2, 3)], [], ValueError, 'at least 3 annotated'),
    '--davis2016 on multi-object masks': (lambda r: None, ['--davis2016'], ValueError,
                                          'one non-zero value, found'),
    '--out is a folder': (lambda r: (r / 'o').mkdir(), ['--out', '{root}/o'], ValueError,
                          'is an existing folder'),
    '--out under a file': (lambda r: (r / 'f').write_text('x'), ['--out', '{root}/f/m.json'],
                           ValueError, 'is a file, not a folder'),
}


@pytest.mark.parametrize('case', list(CASES))
def test_bad_input(tool, tmp_path, case):
    root = davis_root(tmp_path, frames=False)
    mutate, extra, error, match = CASES[case]
    mutate(root)
    with pytest.raises(error, match=match):
        tool.main(_argv(root) + [e.format(root=root) for e in extra])
    assert not (root / 'm.json').exists()


def test_valid_case_is_perfect(tool, tmp_path):
    result = tool.main(_argv(davis_root(tmp_path, frames=False)))
    assert result['J&F-Mean'] == 1.0
