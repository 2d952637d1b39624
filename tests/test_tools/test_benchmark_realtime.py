"""``tools/benchmark/benchmark_realtime.py`` and ``seg.utils.realtime_benchmark``: every task row,
interleaving, stage exclusion and the outputs. Nothing timed is asserted (no speed thresholds)."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from seg.utils.realtime_benchmark import TASKS, BenchSettings, FrameSource, Side, parse_sizes, run_benchmark
from tests.conftest import REPO_ROOT

TOOL = REPO_ROOT / 'tools/benchmark/benchmark_realtime.py'


class _Log:
    def __init__(self):
        self.events = []


class _FakeImagePredictor:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def preprocess(self, image):
        return image

    def set_image(self, image):
        self.log.events.append((self.name, 'set_image', self.preprocess(image).shape))

    def predict(self, point_coords, point_labels, multimask_output=True):
        assert point_coords.shape == (1, 2) and point_labels.tolist() == [1]
        self.log.events.append((self.name, 'predict'))
        return np.zeros((3, 4, 4), bool), np.ones(3), np.zeros((3, 2, 2))


class _FakeVideoPredictor:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def add_new_mask(self, state, frame_idx, obj_id, mask):
        assert frame_idx == 0 and mask.dtype == bool
        state['objects'].append(obj_id)

    def propagate_in_video(self, state):
        for idx in range(len(state['frames'])):
            state['frames'][idx]  # lazy read, as a real predictor does
            self.log.events.append((self.name, 'frame', idx, len(state['objects'])))
            yield idx, list(state['objects']), np.zeros((len(state['objects']), 1, 4, 4))


def _fake_side(name, log, panoptic=True):
    image = _FakeImagePredictor(name, log)
    return Side(name=name, image_predictor=image, video_predictor=_FakeVideoPredictor(name, log),
                init_video=lambda frames: dict(frames=frames, objects=[]), encoders=[],
                panoptic=(lambda rgb: log.events.append((name, 'panoptic'))) if panoptic else None,
                hooks=dict(preprocess=[(image, 'preprocess')]))


def test_parse_sizes():
    assert parse_sizes('1920x1080,854X480') == [(1920, 1080), (854, 480)]
    with pytest.raises(ValueError, match='not WIDTHxHEIGHT'):
        parse_sizes('1920-1080')
    with pytest.raises(ValueError, match='smaller than 16x16'):
        parse_sizes('8x8')


def test_frame_source_decode_and_prompts():
    src = FrameSource(64, 48, num_frames=3, decode=True)
    frame = src.get(1)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    # the JPEG round trip is lossy but close to the frame it encodes
    assert np.abs(frame.astype(int) - src.frames[1].astype(int)).mean() < 10
    masks = src.object_masks(8)
    assert len(masks) == 8 and all(m.any() and m.shape == (48, 64) for m in masks)
    for step in range(10):  # every click falls inside the frame
        x, y = src.click(step)[0]
        assert 0 <= x < 64 and 0 <= y < 48


def test_frame_source_long_stream_repeats_a_cycle():
    src = FrameSource(64, 48, num_frames=10_000, decode=False, cycle=5)
    assert len(src) == 10_000 and len(src.frames) == 5  # 10 000 frames, 5 held
    assert (src.get(7) == src.frames[2]).all() and (src.get(9_999) == src.frames[4]).all()
    assert not (src.get(1) == src.get(0)).all()  # the objects move within the cycle
    with pytest.raises(IndexError, match='frame 10000 of a 10000-frame video'):
        src.get(10_000)
    with pytest.raises(ValueError, match='cycle >= 1'):
        FrameSource(64, 48, num_frames=3, decode=False, cycle=0)


def test_held_memory_stats_reports_growth():
    from seg.utils.realtime_benchmark import TRACE_POINTS, held_memory_stats
    stats = held_memory_stats([100.0, 130.0, 120.0], 'cpu')
    assert stats['held_first_mb'] == 100 and stats['held_last_mb'] == 120
    assert stats['held_max_mb'] == 130 and stats['held_growth_mb'] == 30
    assert stats['held_kind'] == 'process RSS after the call'
    assert stats['held_trace'] == [[0, 100.0], [1, 130.0], [2, 120.0]]
    long = held_memory_stats([float(i % 7) for i in range(10_001)], 'cpu')['held_trace']
    assert len(long) <= TRACE_POINTS + 1 and long[0][0] == 0 and long[-1] == [10_000, 10_000 % 7]


def test_a_long_stream_also_gets_its_memory_plot(tmp_path):
    from seg.utils.realtime_benchmark import held_memory_stats, write_outputs
    held = [500.0 + (i % 10) for i in range(300)]
    row = dict(task='vos_1obj', size='64x48', model='A', n=300, fps=10.0,
               **held_memory_stats(held, 'cpu'))
    short = dict(row, task='reprompt', n=3)
    out = tmp_path / 'stream.json'
    write_outputs(dict(rows=[row, short], ratios=[], included={}), dict(title='t'), out, 't')
    log = json.loads(out.read_text())
    assert log['memory_plot'] == 'stream_memory.png'
    img = np.asarray(Image.open(tmp_path / 'stream_memory.png').convert('L'))
    assert img.shape[0] > 200 and img.std() > 5


def test_tasks_interleave_and_count_calls():
    log = _Log()
    a, b = _fake_side('A', log), _fake_side('B', log, panoptic=False)
    settings = BenchSettings(warmup=1, iters=3, vos_warmup=2, include=('decode',))
    result = run_benchmark([a, b], TASKS, [(32, 24)], settings, log=lambda msg: None)

    rows = {(r['task'], r['model']): r for r in result['rows']}
    for task in TASKS:
        for side in 'AB':
            row = rows[(task, side)]
            if task == 'panoptic' and side == 'B':
                assert row['status'].startswith('n/a')
            else:
                assert row['n'] == 3 and row['mean_ms'] > 0 and math.isfinite(row['p99_ms'])
                # the process's RSS after each timed call: held, first <= max, growth from first
                assert 0 < row['held_first_mb'] <= row['held_max_mb']
                assert row['held_growth_mb'] == row['held_max_mb'] - row['held_first_mb'] >= 0
    assert {(r['task'], r['model']) for r in result['ratios']} == {
        (t, 'B') for t in TASKS if t != 'panoptic'}

    # image tasks: warm-up + timed calls per side, the order flipping at every step
    new_frame = [e[0] for e in log.events if e[1] == 'set_image'][:8]
    assert new_frame == ['A', 'B', 'B', 'A', 'A', 'B', 'B', 'A']
    # VOS: prompt frame + 2 warm-up + 3 timed frames per side, 1 and then 8 objects
    frames = [e for e in log.events if e[1] == 'frame']
    assert [(e[0], e[2]) for e in frames[:6]] == [('A', 0), ('B', 0), ('A', 1), ('B', 1), ('B', 2), ('A', 2)]
    assert sum(e[0] == 'A' and e[3] == 8 for e in frames) == 6
    # preprocessing was excluded by wrapping the hook; the original is back afterwards
    assert result['included']['A']['preprocess'].startswith('excluded (subtracted: _FakeImagePredictor')
    assert result['included']['A']['decode'] == 'included'
    assert 'preprocess' not in a.image_predictor.__dict__


def test_bad_task_and_stage_are_named():
    side = _fake_side('A', _Log())
    with pytest.raises(ValueError, match='unknown task'):
        run_benchmark([side], ['vos_3obj'], [(32, 24)], BenchSettings())
    with pytest.raises(ValueError, match='unknown stage'):
        run_benchmark([side], ['reprompt'], [(32, 24)], BenchSettings(include=('resize',)))


@pytest.mark.benchmark
def test_cli_tiny_vs_sam2_on_cpu(tmp_path):
    """Tiny FastSAM2 vs SAM2.1-T, every task at one tiny size; SAM2 and FastSAM2 process at
    128 / 256 instead of 1024 so the run fits a CI budget (the numbers mean nothing)."""
    out = tmp_path / 'bench' / 'cpu.json'
    proc = subprocess.run(
        [sys.executable, str(TOOL), '--config', 'configs/fastsam2/model_fastsam2_tiny.py',
         '--device', 'cpu', '--threads', '1', '--sizes', '160x96', '--warmup', '1', '--iters', '2',
         '--vos-warmup', '1', '--image-size', '256', '--compare-sam2', 't',
         '--sam2-image-size', '128', '--include', 'decode,preprocess,postprocess',
         '--cuda-graphs', '--out-json', str(out)],
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)
    log = json.loads(out.read_text())

    assert [r['task'] for r in log['rows']] == [t for t in TASKS for _ in range(2)]
    for row in log['rows']:
        if row['task'] == 'panoptic' and row['model'] == 'SAM2.1-t':
            assert row['status'].startswith('n/a')
            continue
        for key in ('mean_ms', 'p50_ms', 'p90_ms', 'p99_ms', 'fps'):
            assert math.isfinite(row[key]) and row[key] > 0, (row, key)
        assert row['n'] == 2 and row['gpu_util_pct'] is None  # CPU: utilisation omitted
    ratios = {r['task']: r['ratio_mean'] for r in log['ratios']}
    assert set(ratios) == set(TASKS) - {'panoptic'}
    assert all(math.isfinite(v) and v > 0 for v in ratios.values())

    env = log['environment']
    assert env['sam2'] != 'not installed' and env['torch'] and '--compare-sam2 t' in env['command']
    assert log['settings']['include'] == ['decode', 'preprocess', 'postprocess']
    assert log['settings']['cuda_graphs'] is True
    assert any('no-op on CPU' in n for n in log['notes'])
    assert set(log['included']) == {'FastSAM2 (model_fastsam2_tiny)', 'SAM2.1-t'}
    assert all(v['decode'] == 'included' for v in log['included'].values())

    png = out.with_suffix('.png')
    assert log['plot'] == png.name and log['memory_plot'] is None  # 2 calls: no stream
    img = np.asarray(Image.open(png).convert('L'))
    assert img.shape[0] > 200 and img.std() > 5


def test_a_single_side_has_no_ratios():
    side = _fake_side('A', _Log())
    result = run_benchmark([side], ['reprompt', 'vos_1obj'], [(32, 24)],
                           BenchSettings(warmup=0, iters=1, vos_warmup=0), log=lambda msg: None)
    assert [r['model'] for r in result['rows']] == ['A', 'A'] and result['ratios'] == []
