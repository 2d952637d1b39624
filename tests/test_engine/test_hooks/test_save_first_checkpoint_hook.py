"""SaveFirstCheckpointHook: with max_keep_ckpts=1 the previous checkpoint exists until the new one
is written (mmengine's hook deletes it first, so a kill mid-save left none)."""
import os
import os.path as osp
from collections import deque
from types import SimpleNamespace

import pytest
from mmengine.fileio import get_file_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import MessageHub

from seg.engine.hooks import SaveFirstCheckpointHook


class _Runner:
    """What ``_save_checkpoint_with_step`` touches; ``save_checkpoint`` records which checkpoint
    files exist at the moment of the write (what a kill then would leave) and writes the file."""

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.message_hub = MessageHub.get_instance('save_first_checkpoint_test')
        self.seen_during_save = []

    def save_checkpoint(self, out_dir, filename, *args, **kwargs) -> None:
        self.seen_during_save.append(_checkpoints(out_dir))
        with open(osp.join(out_dir, filename), 'w') as f:
            f.write('weights')


def _checkpoints(folder) -> list:
    return sorted(n for n in os.listdir(folder) if n.endswith('.pth'))


@pytest.mark.parametrize('hook_type, keeps_one', [(SaveFirstCheckpointHook, True),
                                                   (CheckpointHook, False)])
def test_previous_checkpoint_survives_until_the_new_one_is_written(tmp_path, hook_type, keeps_one):
    hook = hook_type(interval=1, by_epoch=False, max_keep_ckpts=1)
    runner = _Runner(str(tmp_path))
    hook.out_dir = str(tmp_path)
    hook.file_backend = get_file_backend(str(tmp_path))
    hook.filename_tmpl = 'iter_{}.pth'
    hook.keep_ckpt_ids = deque(maxlen=1)
    hook.args = {}
    for step in (1, 2, 3):
        hook._save_checkpoint_with_step(runner, step, SimpleNamespace())
    # mmengine's own hook is the control: it had deleted the previous checkpoint before writing
    assert runner.seen_during_save[1:] == ([['iter_1.pth'], ['iter_2.pth']] if keeps_one else [[], []])
    assert _checkpoints(tmp_path) == ['iter_3.pth']
    with open(tmp_path / 'last_checkpoint') as f:
        assert f.read().endswith('iter_3.pth')
    assert 'remove' not in vars(hook.file_backend)  # the backend's own method again
