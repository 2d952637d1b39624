"""Inference precision of the predictors, the demo and the benchmark: ``'fp32'`` runs the model as
built; ``'fp16'`` / ``'bf16'`` run it under ``torch.autocast`` with that dtype (weights stay fp32,
autocast picks the ops that run in the lower precision)."""
import contextlib
import warnings
from typing import ContextManager, Optional, Union

import torch

PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def check_precision(precision: str, device: Union[str, torch.device]) -> Optional[torch.dtype]:
    """The autocast dtype of ``precision`` on ``device`` (None for fp32). Raises ValueError for
    an unknown name, or a device whose autocast does not run that dtype (torch would only warn
    and run fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {", ".join(PRECISIONS)}, got {precision!r}')
    dtype = PRECISIONS[precision]
    if dtype is None:
        return None
    device_type = torch.device(device).type
    if not torch.amp.is_autocast_available(device_type):
        raise ValueError(f'precision {precision!r}: torch has no autocast on {device_type}; '
                         "use precision='fp32'")
    # an unsupported dtype / device makes torch.autocast warn and disable itself
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.autocast(device_type, dtype=dtype)
    if caught:
        raise ValueError(f'precision {precision!r}: torch {torch.__version__} cannot autocast '
                         f'to {dtype} on {device_type} here ({caught[0].message})')
    return dtype


def autocast(device: Union[str, torch.device], precision: str) -> ContextManager:
    """``torch.autocast`` for fp16 / bf16 on ``device``'s type; fp32: a no-op context. Raises
    as ``check_precision``."""
    dtype = check_precision(precision, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
