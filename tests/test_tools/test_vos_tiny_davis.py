"""``configs/fastsam2/vos_tiny_davis.py`` end to end on a generated DAVIS-2016 root: one training
iteration with ``tools/train.py``, then ``tools/test.py`` streams every sequence, writes palette
PNGs and prints J&F."""
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from tests.conftest import REPO_ROOT

from .test_vos_baselines import write_square_davis2016

CONFIG = REPO_ROOT / 'configs/fastsam2/vos_tiny_davis.py'
SEQUENCES = {'right': (3, 0), 'down': (0, 3)}
NUM_FRAMES = 5


def _run(tool, *args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, str(REPO_ROOT / 'tools' / tool), *map(str, args)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


def test_one_training_iteration_then_davis_evaluation(tmp_path):
    root, work, results = tmp_path / 'davis', tmp_path / 'work', tmp_path / 'results'
    write_square_davis2016(root, SEQUENCES, num_frames=NUM_FRAMES)
    options = [f'train_dataloader.dataset.data_root={root}',
               'train_dataloader.dataset.sequences=None',
               f'test_dataloader.dataset.data_root={root}',
               'test_dataloader.dataset.sequences=None',
               f'test_evaluator.outfile_dir={results}',
               'model.data_preprocessor.resize_longest_side=64']
    # the training frames' random resize and crop (pipeline[1].transforms[2:4]) at 64 px too
    _run('train.py', CONFIG, '--work-dir', work, '--cfg-options', *options,
         'train_dataloader.dataset.pipeline.1.transforms.2.scale=(64,64)',
         'train_dataloader.dataset.pipeline.1.transforms.3.crop_size=(64,36)',
         'train_cfg.max_iters=1', 'default_hooks.logger.interval=1',
         'default_hooks.checkpoint.interval=1')
    out = _run('test.py', CONFIG, work / 'iter_1.pth', '--work-dir', work / 'test',
               '--cfg-options', *options)
    assert 'J&F-Mean' in out and 'davis/J&F-Mean' in out, out[-3000:]
    for seq in SEQUENCES:
        pngs = sorted((results / seq).iterdir())
        assert [p.name for p in pngs] == [f'{t:05d}.png' for t in range(NUM_FRAMES)]
        with Image.open(pngs[-1]) as im:
            assert im.mode == 'P' and im.size == (96, 72)
            assert set(np.unique(np.array(im)).tolist()) <= {0, 1}
