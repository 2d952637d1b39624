"""Atomic writers for evaluation outputs.

A result file that another process (an evaluation server, a second rank, a later evaluation) reads
must never be seen half written, so every writer here writes a temporary file in the destination
folder and moves it into place with ``os.replace`` (atomic on POSIX within one file system).
"""
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, List, Union

import numpy as np
from PIL import Image

PathLike = Union[str, os.PathLike]
# atomic_open's temporary files: '.<name>.<8 characters of mkstemp>.tmp' beside <name>
_TEMP_SUFFIX = '.tmp'
_TEMP_NAME = re.compile(r'^\..+\.[a-z0-9_]{8}' + re.escape(_TEMP_SUFFIX) + '$')


@contextmanager
def atomic_open(path: PathLike, mode: str = 'w') -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_open: mode must be "w" or "wb", got {mode!r}')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix=_TEMP_SUFFIX)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def remove_orphan_temp_files(folder: PathLike) -> List[Path]:
    """Remove the temporary files ``atomic_open`` left in ``folder`` (not recursive) when its
    process was killed mid-write, and return their paths.

    Only call it where no other process is writing into ``folder`` at the same time (e.g. a
    training's work dir when the training starts): a live write's temporary file looks the same.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.iterdir()):
        if _TEMP_NAME.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)  # another rank may have removed it first
            removed.append(path)
    return removed


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays come out of the metric code; json cannot encode them natively.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f'atomic_write_json: cannot encode {type(obj).__name__} as JSON')


def _first_non_finite(obj: Any, where: str = '') -> str:
    """The key path of the first NaN / inf number in ``obj`` ('' when there is none)."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    elif isinstance(obj, np.ndarray):
        return '' if obj.dtype.kind not in 'fc' or np.isfinite(obj).all() else where or '<root>'
    else:  # only floats can be non-finite (strings such as "nan" are text)
        finite = not isinstance(obj, (float, np.floating)) or np.isfinite(obj)
        return '' if finite else where or '<root>'
    for key, value in items:
        found = _first_non_finite(value, f'{where}[{key!r}]')
        if found:
            return found
    return ''


def atomic_write_json(obj: Any, path: PathLike, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (numpy scalars/arrays allowed).

    NaN / inf are refused (``allow_nan=False``): strict JSON parsers reject the bare ``NaN``
    token, so a non-finite number is an error naming its key, and ``path`` is left untouched."""
    bad = _first_non_finite(obj)
    if bad:
        raise ValueError(f'atomic_write_json: {path}: non-finite number at {bad}; JSON has no NaN '
                         '/ inf (validate the inputs that produced it)')
    with atomic_open(path, 'w') as f:
        json.dump(obj, f, indent=indent, default=_json_default, allow_nan=False)


def atomic_save_png(image: Image.Image, path: PathLike) -> None:
    """Save a PIL image as PNG to ``path`` atomically (palette and mode are kept)."""
    with atomic_open(path, 'wb') as f:
        image.save(f, format='PNG')
