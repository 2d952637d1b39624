"""Reading fields of data samples as metrics receive them.

mmengine's ``Evaluator`` converts each top-level data sample to a dict before ``process``, while
nested samples (e.g. a ``TrackDataSample``'s frames) stay data elements, so metrics read both.
"""
from typing import Any

import numpy as np
import torch


def get_field(obj: Any, key: str, default: Any = None) -> Any:
    """``key`` of a dict, or the data field / metainfo ``key`` of a data element."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def to_numpy(x: Any) -> np.ndarray:
    """A tensor, mmdet ``BitmapMasks`` or array-like as a numpy array."""
    if hasattr(x, 'to_ndarray'):  # mmdet BitmapMasks / PolygonMasks
        return x.to_ndarray()
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
