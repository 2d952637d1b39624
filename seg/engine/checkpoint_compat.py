"""Let mmengine 0.10.7 resume checkpoints under torch >= 2.6.

torch >= 2.6 loads with ``weights_only=True`` by default. mmengine stores its MessageHub (with
``HistoryBuffer`` objects holding numpy arrays) inside the checkpoint's ``meta``, so resume fails with
"Unsupported global". We allow-list exactly what mmengine writes there instead of turning the safe
loader off. One of those is ``getattr``: a ``HistoryBuffer`` pickles its statistics as bound methods
(``getattr(HistoryBuffer, 'mean')``). Allowing the real ``getattr`` would let a crafted file reach any
attribute (and from there, code), so the unpickler gets a restricted one that only returns the
statistics methods of a ``HistoryBuffer``.
"""
import pickle
from typing import Any

import numpy as np
import torch


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` limited to a HistoryBuffer's registered statistics methods."""
    from mmengine.logging import HistoryBuffer
    HistoryBuffer()  # the built-in statistics are registered by the first construction only
    if (obj is HistoryBuffer or isinstance(obj, HistoryBuffer)) and \
            name in HistoryBuffer._statistics_methods:
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'checkpoint asks for attribute {name!r} of {obj!r}: only '
                                 'HistoryBuffer statistics methods are allowed')


def register_mmengine_safe_globals() -> None:
    """Allow-list mmengine's checkpoint ``meta`` classes for ``torch.load(weights_only=True)``."""
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer
    safe = [HistoryBuffer, ConfigDict, np.ndarray, np.dtype, np._core.multiarray._reconstruct,
            np._core.multiarray.scalar, (_history_buffer_getattr, 'builtins.getattr')]
    # numpy 2 pickles dtypes by their concrete class (np.dtypes.Float64DType, ...).
    safe += [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith('DType')]
    torch.serialization.add_safe_globals(safe)
