import os

import pytest
from mmengine.fileio import get_file_backend

from seg.engine import AtomicLocalBackend


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
