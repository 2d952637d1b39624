"""Atomic writers for evaluation outputs.

A result file that another process (an evaluation server, a second rank, a later evaluation) reads
must never be seen half written, so every writer here writes a temporary file in the destination
folder and moves it into place with ``os.replace`` (atomic on POSIX within one file system).
"""
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Union

import numpy as np
from PIL import Image

PathLike = Union[str, os.PathLike]


@contextmanager
def atomic_open(path: PathLike, mode: str = 'w') -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_open: mode must be "w" or "wb", got {mode!r}')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays come out of the metric code; json cannot encode them natively.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f'atomic_write_json: cannot encode {type(obj).__name__} as JSON')


def atomic_write_json(obj: Any, path: PathLike, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (numpy scalars/arrays allowed)."""
    with atomic_open(path, 'w') as f:
        json.dump(obj, f, indent=indent, default=_json_default)


def atomic_save_png(image: Image.Image, path: PathLike) -> None:
    """Save a PIL image as PNG to ``path`` atomically (palette and mode are kept)."""
    with atomic_open(path, 'wb') as f:
        image.save(f, format='PNG')
