"""timm-style sweep: every module ``seg`` registers in MODELS builds from a tiny config and runs
forward + backward on CPU with finite outputs and a gradient for every trainable parameter (a case
declared frozen instead checks that nothing is trainable or builds a graph)."""
import pytest
import torch
import torch.nn as nn

import seg  # noqa: F401
from seg.registry import MODELS
from tests.test_models.tiny_cases import all_cases

CASES = all_cases()


def seg_model_classes() -> set:
    return {name for name, cls in MODELS.module_dict.items()
            if getattr(cls, '__module__', '').startswith('seg.')}


def _tensors(out):
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, dict):
        for v in out.values():
            yield from _tensors(v)
    elif isinstance(out, (list, tuple)):
        for v in out:
            yield from _tensors(v)
    elif hasattr(out, '__dataclass_fields__'):
        for k in out.__dataclass_fields__:
            yield from _tensors(getattr(out, k))


def test_every_registered_module_has_a_case():
    covered = {name.split('[')[0] for name in CASES}
    missing = seg_model_classes() - covered
    assert not missing, f'registered modules without a tiny case: {sorted(missing)}'
    unknown = covered - set(MODELS.module_dict)
    assert not unknown, f'tiny cases for unregistered modules: {sorted(unknown)}'


@pytest.mark.parametrize('name', sorted(CASES))
def test_forward_backward(name):
    case = CASES[name]
    module = MODELS.build(case.cfg)
    if isinstance(module, nn.Module):
        module.train()
    out = case.run(module)
    tensors = [t for t in _tensors(out) if t is not None]
    assert tensors, f'{name}: forward returned no tensor'
    for t in tensors:
        if t.is_floating_point():
            assert torch.isfinite(t).all(), f'{name}: non-finite output'
    if not isinstance(module, nn.Module):
        return
    params = dict(module.named_parameters())
    trainable = [(n, p) for n, p in params.items() if p.requires_grad]
    if case.frozen:
        assert params and not trainable, f'{name}: a frozen module has parameters, none trainable'
        assert not any(m.training for m in module.modules()), f'{name}: train() left eval mode'
        assert not any(t.requires_grad for t in tensors), f'{name}: a frozen module returned a graph'
        return
    if not trainable:
        # parameter-free modules (routers, losses, preprocessors); frozen ones must say so
        assert not params, f'{name}: no trainable parameter; declare the case frozen=True if intended'
        return
    loss = sum(t.float().sum() for t in tensors if t.requires_grad)
    assert torch.is_tensor(loss) and loss.requires_grad, f'{name}: outputs carry no graph'
    loss.backward()
    no_grad = [n for n, p in trainable if p.grad is None
               and not any(n.startswith(pref) for pref in case.no_grad_ok)]
    assert not no_grad, f'{name}: parameters without gradient: {no_grad}'
    bad = [n for n, p in trainable if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f'{name}: non-finite gradients in {bad}'
