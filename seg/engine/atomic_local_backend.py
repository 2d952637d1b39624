"""A local file backend that never leaves a half-written file behind.

mmengine's ``LocalBackend`` writes checkpoints and ``last_checkpoint`` in place: a crash or a full disk
mid-write leaves a truncated ``iter_N.pth`` that ``--resume`` then picks up. This backend writes to a
temporary file in the same folder and ``os.replace``-s it into place. Configs select it with
``default_hooks.checkpoint.backend_args=dict(backend='atomic_local')``.
"""
from pathlib import Path
from typing import Union

from mmengine.fileio.backends import LocalBackend, register_backend

from seg.utils.atomic_io import atomic_open


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose writes are atomic (temporary file + ``os.replace``)."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        with atomic_open(filepath, 'wb') as f:
            f.write(obj)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        with atomic_open(filepath, 'wb') as f:
            f.write(obj.encode(encoding))
