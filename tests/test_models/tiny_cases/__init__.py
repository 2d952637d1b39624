"""Tiny build configs + inputs for every module ``seg`` registers in ``MODELS``.

Each area keeps its cases in its own file here (``backbones.py``, ``necks.py``, ...), as a dict
``CASES = {'ClassName': TinyCase(...)}``; ``tests/test_models/test_every_module.py`` builds each one,
runs forward + backward on CPU and checks that outputs are finite and that every trainable parameter
receives a gradient. A registered module without a case fails that test.
"""
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Dict


@dataclass
class TinyCase:
    """``cfg`` builds the module (``MODELS.build``); ``run(module)`` returns its output (tensor, or a
    tuple/list/dict nesting tensors) for the given tiny inputs."""
    cfg: dict
    run: Callable[[Any], Any]
    # Parameters allowed to stay without gradient, by name prefix, with the reason (e.g. a frozen tower
    # used only for text, or a branch the tiny inputs do not reach by design).
    no_grad_ok: Dict[str, str] = field(default_factory=dict)
    # Frozen by design (a distillation teacher): the module has parameters, none trainable, stays in
    # eval mode after ``train()`` and returns no graph; checked instead of the backward pass.
    frozen: bool = False


def all_cases() -> Dict[str, TinyCase]:
    """Collect the cases of every area module in this package."""
    cases: Dict[str, TinyCase] = {}
    for info in pkgutil.iter_modules(__path__):
        area = importlib.import_module(f'{__name__}.{info.name}')
        overlap = cases.keys() & area.CASES.keys()
        if overlap:
            raise ValueError(f'tiny case(s) {sorted(overlap)} defined twice (again in {info.name})')
        cases.update(area.CASES)
    return cases
