import pytest
import torch

from seg.models.utils import PromptFusion
from seg.registry import MODELS

N, P, C, DT = 3, 4, 16, 12


@pytest.fixture
def fusion():
    return MODELS.build(dict(type='PromptFusion', embed_dim=C, text_dim=DT, num_heads=2,
                             num_layers=2)).eval()


def _prompts():
    point_valid = torch.ones(N, P, dtype=torch.bool)
    point_valid[1, 2:] = False
    return dict(point_embed=torch.randn(N, P, C), point_valid=point_valid,
                box_embed=torch.randn(N, 2, C), box_valid=torch.tensor([True, False, True]),
                mask_embed=torch.randn(N, C), mask_valid=torch.tensor([False, True, True]),
                text_embed=torch.randn(N, DT), text_valid=torch.tensor([True, True, False]))


def test_point_order_does_not_matter(fusion):
    prompts = _prompts()
    out = fusion(**prompts)
    assert out.shape == (N, C)
    perm = torch.randperm(P)
    shuffled = dict(prompts, point_embed=prompts['point_embed'][:, perm],
                    point_valid=prompts['point_valid'][:, perm])
    torch.testing.assert_close(fusion(**shuffled), out, atol=1e-5, rtol=0)


def test_missing_modalities_are_masked_not_zeroed(fusion):
    prompts = _prompts()
    out = fusion(**prompts)
    # what sits behind an invalid flag never leaks into the output
    garbage = dict(prompts)
    for key, valid in (('box_embed', 'box_valid'), ('mask_embed', 'mask_valid')):
        x = prompts[key].clone()
        x[~prompts[valid]] = 100 * torch.randn_like(x[~prompts[valid]])
        garbage[key] = x
    pts = prompts['point_embed'].clone()
    pts[~prompts['point_valid']] = 100.0
    garbage['point_embed'] = pts
    torch.testing.assert_close(fusion(**garbage), out)
    # a modality marked invalid everywhere equals leaving it out, and differs from feeding zeros
    no_text = fusion(**dict(prompts, text_valid=torch.zeros(N, dtype=torch.bool)))
    left_out = fusion(**{k: v for k, v in prompts.items() if not k.startswith('text')})
    torch.testing.assert_close(no_text, left_out)
    zeros = fusion(**dict(prompts, text_embed=torch.zeros(N, DT),
                          text_valid=torch.ones(N, dtype=torch.bool)))
    assert not torch.allclose(zeros, left_out)


def test_absent_modalities_leave_the_sequence_with_the_same_output(fusion, monkeypatch):
    """At inference a modality no object has, and the padding mask when nothing is padded, are
    dropped (a click alone runs 2 tokens, unmasked); training and an exported graph keep every
    token, masked. All give the same queries."""
    seen = []
    fusion.layers[0].register_forward_pre_hook(
        lambda m, args, kwargs: seen.append((args[0].shape[1], kwargs['src_key_padding_mask'])),
        with_kwargs=True)
    prompts = _prompts()
    one_click = dict(prompts, point_embed=prompts['point_embed'][:, :1],
                     point_valid=torch.ones(N, 1, dtype=torch.bool),
                     box_valid=torch.zeros(N, dtype=torch.bool),
                     mask_valid=torch.zeros(N, dtype=torch.bool),
                     text_valid=torch.zeros(N, dtype=torch.bool))
    mixed = dict(prompts, mask_valid=torch.zeros(N, dtype=torch.bool))
    pruned = [fusion(**one_click), fusion(**mixed)]
    assert seen[0] == (2, None)  # fusion token + the click
    assert seen[1][0] == 1 + P + 2 + 1 and seen[1][1] is not None  # no mask token; padded points
    seen.clear()
    with torch.no_grad():
        training = fusion.train()(**one_click)
    fusion.eval()
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
    full = [fusion(**one_click), fusion(**mixed)]
    assert [s[0] for s in seen] == [1 + 1 + 4] * 2 + [1 + P + 4]
    for a, b in zip(pruned, full):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(training, pruned[0], atol=1e-5, rtol=0)  # dropout is 0


def test_objects_are_fused_independently(fusion):
    prompts = _prompts()
    out = fusion(**prompts)
    single = fusion(**{k: v[1:2] for k, v in prompts.items()})
    torch.testing.assert_close(single, out[1:2], atol=1e-5, rtol=0)


def test_text_only_prompt_gives_a_query_that_follows_the_text(fusion):
    text = torch.randn(2, DT)
    out = fusion(text_embed=text)
    assert out.shape == (2, C) and out.isfinite().all()
    assert not torch.allclose(out[0], out[1])


def test_every_parameter_gets_a_gradient():
    fusion = PromptFusion(C, DT, num_heads=2).train()
    fusion(**_prompts()).square().sum().backward()
    for name, p in fusion.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_input(fusion):
    with pytest.raises(ValueError, match='at least one of'):
        fusion()
    with pytest.raises(ValueError, match=r'object\(s\) \[1\] have no valid prompt'):
        fusion(box_embed=torch.randn(2, 2, C), box_valid=torch.tensor([True, False]))
    with pytest.raises(ValueError, match='disagree on the number of objects'):
        fusion(box_embed=torch.randn(2, 2, C), text_embed=torch.randn(3, DT))
    with pytest.raises(ValueError, match=r'text_embed must be \[2, 12\]'):
        fusion(text_embed=torch.randn(2, C))
    with pytest.raises(ValueError, match='point_valid must be bool'):
        fusion(point_embed=torch.randn(2, P, C), point_valid=torch.ones(2, P))
