"""``tools/analysis/plot_loss_curves.py``: staged work dirs -> one PNG of loss curves."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO_ROOT

TOOL = REPO_ROOT / 'tools/analysis/plot_loss_curves.py'


def _work_dir(root, name, losses):
    run = root / name / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    with open(run / 'scalars.json', 'w') as f:
        for i, v in enumerate(losses, 1):
            f.write(json.dumps({'lr': 1e-4, 'loss': v, 'loss_distill_feat': v / 2, 'd0.loss_cls': v,
                                'iter': i * 10, 'step': i * 10}) + '\n')
        f.write(json.dumps({'PQ': 10.0, 'step': 30}) + '\n')  # a validation record: skipped
    return root / name


def _run(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_stages_plotted_end_to_end(tmp_path):
    dirs = [_work_dir(tmp_path, f'stage{s}', np.linspace(5, 1, 4) / s) for s in (1, 2)]
    out = tmp_path / 'curves.png'
    proc = _run(*dirs, '--out', out)
    assert proc.returncode == 0, proc.stderr
    # default keys: total loss first, deep-supervision copies ('d0.') left out
    assert '2 key(s)' in proc.stdout
    img = np.asarray(Image.open(out).convert('L'))
    assert img.shape[0] > 100 and img.shape[1] > 400
    assert img.std() > 5  # something was drawn, not a blank canvas


def test_unknown_key_and_missing_run_are_clear_errors(tmp_path):
    d = _work_dir(tmp_path, 'stage1', [3.0, 2.0])
    proc = _run(d, '--out', tmp_path / 'x.png', '--keys', 'loss_nope')
    assert proc.returncode != 0 and 'loss_nope' in proc.stderr and 'loss_distill_feat' in proc.stderr
    proc = _run(tmp_path / 'empty', '--out', tmp_path / 'x.png')
    assert proc.returncode != 0 and 'scalars.json' in proc.stderr
    assert not (tmp_path / 'x.png').exists()


@pytest.mark.parametrize('labels', [['a'], ['a', 'b', 'c']])
def test_label_count_must_match(tmp_path, labels):
    dirs = [_work_dir(tmp_path, f's{i}', [1.0, 0.5]) for i in range(2)]
    proc = _run(*dirs, '--out', tmp_path / 'x.png', '--labels', *labels)
    assert proc.returncode != 0 and 'labels' in proc.stderr
