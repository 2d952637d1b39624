import os

import pytest
from mmengine.fileio import get_file_backend

from seg.engine import AtomicLocalBackend
from seg.utils.atomic_io import atomic_open, remove_orphan_temp_files


def test_selected_by_backend_args(tmp_path):
    backend = get_file_backend(str(tmp_path), backend_args=dict(backend='atomic_local'))
    assert isinstance(backend, AtomicLocalBackend)
    backend.put(b'abc', tmp_path / 'sub' / 'x.pth')
    backend.put_text('iter_1.pth', tmp_path / 'last_checkpoint')
    assert (tmp_path / 'sub' / 'x.pth').read_bytes() == b'abc'
    assert (tmp_path / 'last_checkpoint').read_text() == 'iter_1.pth'


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / 'iter_1.pth'
    target.write_bytes(b'old')

    def boom(*_):
        raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', boom)
    with pytest.raises(OSError, match='disk full'):
        AtomicLocalBackend().put(b'new-but-never-complete', target)
    assert target.read_bytes() == b'old'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_1.pth']


def test_orphan_temp_file_of_a_killed_write_is_removed(tmp_path, monkeypatch):
    """A kill mid-write skips atomic_open's clean-up (simulated: os.unlink does nothing); the
    temporary file it leaves is what remove_orphan_temp_files removes, and nothing else."""
    (tmp_path / 'iter_1.pth').write_bytes(b'done')
    (tmp_path / '.hidden_config').write_text('keep')
    (tmp_path / 'notes.tmp').write_text('keep')
    with monkeypatch.context() as m:
        m.setattr(os, 'unlink', lambda path: None)
        with pytest.raises(KeyboardInterrupt):
            with atomic_open(tmp_path / 'iter_2.pth', 'wb') as f:
                f.write(b'half')
                raise KeyboardInterrupt
    orphans = [p for p in tmp_path.iterdir() if p.name.startswith('.iter_2.pth.')]
    assert len(orphans) == 1
    assert remove_orphan_temp_files(tmp_path) == orphans
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.hidden_config', 'iter_1.pth', 'notes.tmp']
    assert remove_orphan_temp_files(tmp_path / 'missing') == []
