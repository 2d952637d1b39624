"""seg.utils.precision: precision names -> autocast dtypes, clear errors for unknown names and for
devices whose autocast cannot run the dtype, and the autocast context really lowering matmuls."""
import pytest
import torch

from seg.utils import precision as precision_mod
from seg.utils.precision import autocast, check_precision


def test_names_map_to_autocast_dtypes():
    assert check_precision('fp32', 'cpu') is None
    assert check_precision('bf16', 'cpu') is torch.bfloat16
    assert check_precision('bf16', torch.device('cpu')) is torch.bfloat16


@pytest.mark.parametrize('name', ['float16', 'FP16', 'half', '', 'fp64'])
def test_unknown_names_are_rejected(name):
    with pytest.raises(ValueError, match=rf"precision must be one of fp32, fp16, bf16, got '{name}'"):
        check_precision(name, 'cpu')
    with pytest.raises(ValueError, match='precision must be one of'):
        autocast('cpu', name)


def test_autocast_lowers_matmuls_and_fp32_does_not():
    a = torch.randn(4, 4)
    with autocast('cpu', 'bf16'):
        assert (a @ a).dtype is torch.bfloat16
    with autocast('cpu', 'fp32'):
        assert (a @ a).dtype is torch.float32


def test_unsupported_device_or_dtype_is_an_error_not_a_silent_fp32(monkeypatch):
    """torch.autocast only warns (and runs fp32) for a dtype its device cannot autocast to."""
    class WarningAutocast:
        def __init__(self, device_type, dtype):
            import warnings
            warnings.warn(f'{device_type} autocast does not support {dtype}; disabling')

    monkeypatch.setattr(precision_mod.torch, 'autocast', WarningAutocast)
    with pytest.raises(ValueError, match=r"precision 'fp16': .*cannot autocast to torch.float16 on "
                                         r'cpu here \(cpu autocast does not support'):
        check_precision('fp16', 'cpu')
    monkeypatch.setattr(precision_mod.torch.amp, 'is_autocast_available', lambda device: False)
    with pytest.raises(ValueError, match="precision 'bf16': torch has no autocast on cpu"):
        check_precision('bf16', 'cpu')


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_cuda_precision_without_cuda_is_named():
    with pytest.raises(ValueError, match="precision 'fp16'.*on cuda"):
        check_precision('fp16', 'cuda')
