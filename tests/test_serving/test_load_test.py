"""tools/serving/load_test.py at a small size: concurrent clients upload, click, propagate and
delete; with micro-batching on and off no request fails, no session leaks, and the report has
p50 / p99 latency and throughput."""

import pytest

from tests.conftest import load_script


@pytest.fixture(scope='module')
def load_test():
    return load_script('tools/serving/load_test.py')


def test_small_load_on_and_off(load_test, shared_data):
    with pytest.warns(UserWarning, match='RANDOM weights'):
        results = load_test.run_in_process(windows=[5.0, 0.0], clients=4, frames=3, clicks=2, side=256)
    assert [r['window_ms'] for r in results] == [5.0, 0.0]
    for r in results:
        assert r['failed'] == 0 and r['leaked_sessions'] == 0, r['failures']
        # per client: create, 2 prompts, propagate, masks, delete
        assert r['requests'] == 4 * 6 and r['throughput_rps'] > 0
        assert r['tracked_fps'] > 0 and r['batcher']['jobs']['decode'] == 4 * 2
        for kind in ('create', 'prompt', 'propagate', 'masks', 'delete'):
            stats = r['latency_ms'][kind]
            assert 0 < stats['p50_ms'] <= stats['p99_ms']
    on, off = results
    assert off['batcher']['calls']['decode'] == off['batcher']['jobs']['decode']  # off: one call each
    assert on['batcher']['calls']['decode'] <= on['batcher']['jobs']['decode']
    table = load_test.format_table(results)
    assert '| on (5 ms) |' in table and '| off |' in table


def test_cli_rejects_bad_sizes(load_test, capsys):
    with pytest.raises(SystemExit):
        load_test.main(['--clients', '0'])
    assert '--clients' in capsys.readouterr().err


def test_make_clip_is_a_zip_of_resized_frames(load_test, shared_data):
    import io
    import zipfile

    import cv2
    import numpy as np
    z = zipfile.ZipFile(io.BytesIO(load_test.make_clip(5, 128)))
    assert z.namelist() == [f'{i:05d}.jpg' for i in range(5)]
    first, third = (cv2.imdecode(np.frombuffer(z.read(n), np.uint8), cv2.IMREAD_COLOR)
                    for n in ('00000.jpg', '00002.jpg'))
    assert first.shape == (72, 128, 3) and not np.array_equal(first, third)  # shifted on lap 2
