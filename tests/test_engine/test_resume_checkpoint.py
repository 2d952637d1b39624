"""``--resume auto`` picks the newest valid checkpoint when ``last_checkpoint`` is empty, stale,
or names a missing or corrupt file; an explicit ``--resume`` of a corrupt file is refused."""
import argparse
import os

import pytest
import torch
from mmengine.config import Config

from seg.engine.resume_checkpoint import checkpoint_problem, find_resumable_checkpoint
from seg.engine.runner_config import apply_train_args


@pytest.fixture
def work_dir(tmp_path):
    """iter_1.pth and iter_2.pth (newer), both valid; last_checkpoint names iter_2."""
    for i in (1, 2):
        path = tmp_path / f'iter_{i}.pth'
        torch.save(dict(meta=dict(iter=i), state_dict=dict(w=torch.full((64, ), float(i)))), path)
        os.utime(path, (1000 + i, 1000 + i))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    return tmp_path


def _corrupt(path, mode: str) -> None:
    data = bytearray(path.read_bytes())
    if mode == 'truncated':
        data = data[:len(data) // 2]
    else:  # a flipped byte inside a record: only its CRC tells
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, (2000, 2000))  # still the newest


@pytest.mark.parametrize('pointer,expected', [
    ('iter_2.pth', 'iter_2.pth'),   # the normal case
    ('', 'iter_2.pth'),             # empty last_checkpoint
    ('iter_1.pth', 'iter_2.pth'),   # stale: killed after writing iter_2, before updating it
    ('iter_9.pth', 'iter_2.pth'),   # names a deleted checkpoint
    (None, 'iter_2.pth'),           # no last_checkpoint at all
])
def test_newest_valid_checkpoint(work_dir, pointer, expected):
    if pointer is None:
        (work_dir / 'last_checkpoint').unlink()
    else:
        (work_dir / 'last_checkpoint').write_text(str(work_dir / pointer) if pointer else '')
    assert find_resumable_checkpoint(str(work_dir)) == str(work_dir / expected)


@pytest.mark.parametrize('mode', ['truncated', 'flipped byte'])
def test_corrupt_newest_checkpoint_falls_back(work_dir, mode):
    _corrupt(work_dir / 'iter_2.pth', mode)
    assert checkpoint_problem(str(work_dir / 'iter_2.pth')) is not None
    assert find_resumable_checkpoint(str(work_dir)) == str(work_dir / 'iter_1.pth')


def test_no_valid_checkpoint(tmp_path):
    assert find_resumable_checkpoint(str(tmp_path)) is None
    (tmp_path / 'iter_3.pth').write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_3.pth'))
    assert checkpoint_problem(str(tmp_path / 'iter_3.pth')).startswith('not a torch checkpoint')
    assert find_resumable_checkpoint(str(tmp_path)) is None


def _train_args(**kwargs) -> argparse.Namespace:
    args = dict(resume=None, load_from=None, amp=False, amp_dtype=None, auto_scale_lr=False)
    return argparse.Namespace(**{**args, **kwargs})


def test_launcher_resume_auto_and_explicit(work_dir):
    (work_dir / 'last_checkpoint').write_text('')
    cfg = apply_train_args(Config(dict(work_dir=str(work_dir))), _train_args(resume='auto'))
    assert cfg.resume is True and cfg.load_from == str(work_dir / 'iter_2.pth')

    _corrupt(work_dir / 'iter_1.pth', 'truncated')
    with pytest.raises(ValueError, match=r'--resume .*iter_1\.pth: not a torch checkpoint'):
        apply_train_args(Config(dict(work_dir=str(work_dir))),
                         _train_args(resume=str(work_dir / 'iter_1.pth')))
    # nothing valid: a fresh start (from the config's load_from)
    for name in ('iter_1.pth', 'iter_2.pth'):
        (work_dir / name).unlink()
    cfg = apply_train_args(Config(dict(work_dir=str(work_dir), load_from='prev.pth')),
                           _train_args(resume='auto'))
    assert cfg.resume is False and cfg.load_from == 'prev.pth'
