"""``tools/benchmark/stream_memory.py``: a short stream through the CLI writes the held-memory
trace, its plot and the latency; bad arguments are named. Nothing timed is asserted."""
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from tests.conftest import REPO_ROOT

TOOL = REPO_ROOT / 'tools/benchmark/stream_memory.py'


def test_short_stream_writes_trace_and_plot(tmp_path):
    out = tmp_path / 'stream.json'
    proc = subprocess.run(
        [sys.executable, str(TOOL), '--frames', '40', '--warmup', '5', '--size', '96x64',
         '--image-size', '96', '--objects', '2', '--threads', '1', '--out-json', str(out)],
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'memory held' in proc.stdout
    log = json.loads(out.read_text())
    row, = log['rows']
    assert row['task'] == 'stream_2obj' and row['n'] == 34  # frames 6..39 recorded
    assert row['held_trace'][0][0] == 0 and row['held_trace'][-1][0] == 33
    assert 0 < row['held_first_mb'] <= row['held_max_mb'] and row['held_growth_mb'] >= 0
    assert row['mean_ms'] > 0 and log['settings']['frames'] == 40
    img = np.asarray(Image.open(out.with_suffix('.png')).convert('L'))
    assert img.shape[0] > 200 and img.std() > 5


def test_bad_arguments_are_named(tmp_path):
    for args, message in ((['--objects', '9'], '--objects must be in 1..8, got 9'),
                          (['--frames', '10', '--warmup', '9'], 'must exceed --warmup'),
                          (['--size', '96-64'], 'not WIDTHxHEIGHT')):
        proc = subprocess.run([sys.executable, str(TOOL), *args, '--out-json',
                               str(tmp_path / 'x.json')],
                              capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
