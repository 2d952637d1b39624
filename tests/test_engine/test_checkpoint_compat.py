import io
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

import seg  # noqa: F401  (registers the safe globals)


def test_history_buffer_loads_with_weights_only(monkeypatch):
    buf = HistoryBuffer()
    for v in (1.0, 2.5, 4.0):
        buf.update(v)
    f = io.BytesIO()
    torch.save({'meta': {'hub': {'loss': buf, 'arr': np.arange(3), 'scalar': np.float64(2.0)}}}, f)
    f.seek(0)
    # as in a fresh process (tools/test.py): no HistoryBuffer built yet, so none registered
    monkeypatch.setattr(HistoryBuffer, '_statistics_methods', {})
    out = torch.load(f, weights_only=True)['meta']['hub']
    assert out['loss'].mean() == pytest.approx(2.5) and out['loss'].current() == 4.0
    assert (out['arr'] == np.arange(3)).all() and out['scalar'] == 2.0


class _Evil:
    def __reduce__(self):
        # getattr(HistoryBuffer, '__init__') -> a path towards globals: must be refused
        return getattr, (HistoryBuffer, '__init__')


def test_restricted_getattr_refuses_other_attributes():
    f = io.BytesIO()
    torch.save({'x': _Evil()}, f)
    f.seek(0)
    with pytest.raises(pickle.UnpicklingError, match='only HistoryBuffer statistics methods'):
        torch.load(f, weights_only=True)
