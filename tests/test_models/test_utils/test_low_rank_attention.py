import pytest
import torch
from torch import nn

from seg.models.utils import LowRankMHSA
from seg.registry import MODELS

E, HEADS, N = 16, 2, 48


def _pair(method, rank, max_seq_len=N, mha=None):
    """A LowRankMHSA sharing its projections with an nn.MultiheadAttention (new unless given)."""
    if mha is None:
        mha = nn.MultiheadAttention(E, HEADS, batch_first=True)
        nn.init.normal_(mha.in_proj_bias)  # non-zero biases so their loading is checked too
    low = LowRankMHSA(E, HEADS, rank, method=method, max_seq_len=max_seq_len)
    missing, unexpected = low.load_state_dict(mha.state_dict(), strict=False)
    assert not unexpected and set(missing) <= {'key_seq_proj', 'value_seq_proj'}
    return low, mha


def _padding():
    pad = torch.zeros(2, N, dtype=torch.bool)
    pad[0, 30:] = True
    return pad


@pytest.mark.parametrize('with_padding', [False, True])
def test_nystrom_with_a_landmark_per_token_is_exact(with_padding):
    low, mha = _pair('nystrom', rank=N)
    q, kv = torch.randn(2, 10, E), torch.randn(2, N, E)
    pad = _padding() if with_padding else None
    torch.testing.assert_close(low(q, kv, kv, key_padding_mask=pad),
                               mha(q, kv, kv, key_padding_mask=pad)[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize('with_padding', [False, True])
def test_linformer_with_identity_projections_is_exact(with_padding):
    low, mha = _pair('linformer', rank=N)
    # the segment-pooling initialisation is the identity when rank == max_seq_len
    assert torch.equal(low.key_seq_proj, torch.eye(N)) and torch.equal(low.value_seq_proj, torch.eye(N))
    q, kv = torch.randn(2, 10, E), torch.randn(2, N, E)
    pad = _padding() if with_padding else None
    torch.testing.assert_close(low(q, kv, kv, key_padding_mask=pad),
                               mha(q, kv, kv, key_padding_mask=pad)[0], atol=1e-5, rtol=0)
    # a shorter sequence uses the first columns: still exact
    torch.testing.assert_close(low(q, kv[:, :20], kv[:, :20]), mha(q, kv[:, :20], kv[:, :20])[0],
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize('method', ['nystrom', 'linformer'])
@pytest.mark.parametrize('smooth', [False, True])
def test_error_decreases_as_rank_grows(method, smooth):
    q, kv = torch.randn(2, N, E), torch.randn(2, N, E)
    if smooth:  # a random walk: neighbouring tokens alike, as in image features
        kv = kv.cumsum(1) / 4
    errors, mha = [], None
    # ranks dividing N: the Linformer pooling initialisation then uses equal segments
    for rank in (2, 8, 24):
        low, mha = _pair(method, rank, mha=mha)
        errors.append((low(q, kv, kv) - mha(q, kv, kv)[0]).abs().mean().item())
    assert errors[0] > errors[1] > errors[2], errors


@pytest.mark.parametrize('method', ['nystrom', 'linformer'])
def test_padded_keys_have_no_influence(method):
    low = LowRankMHSA(E, HEADS, rank=8, method=method, max_seq_len=N)
    q, kv = torch.randn(2, 5, E), torch.randn(2, N, E)
    pad = _padding()
    out = low(q, kv, kv, key_padding_mask=pad)
    garbage = kv.clone()
    garbage[pad] = 100 * torch.randn(int(pad.sum()), E)
    torch.testing.assert_close(low(q, garbage, garbage, key_padding_mask=pad), out)


def test_iterative_pinv_converges_to_the_pseudo_inverse():
    a = torch.softmax(torch.randn(3, 5, 7), -1)
    torch.testing.assert_close(LowRankMHSA.iterative_pinv(a, 30), torch.linalg.pinv(a),
                               atol=1e-4, rtol=0)
    z = LowRankMHSA.iterative_pinv(a, 30)
    torch.testing.assert_close(a @ z @ a, a, atol=1e-5, rtol=0)


@pytest.mark.parametrize('method', ['nystrom', 'linformer'])
def test_every_parameter_gets_a_gradient(method):
    low = MODELS.build(dict(type='LowRankMHSA', embed_dim=E, num_heads=HEADS, rank=4, method=method,
                            max_seq_len=N))
    q, kv = torch.randn(2, 7, E), torch.randn(2, 20, E)
    low(q, kv, kv, key_padding_mask=_padding()[:, :20]).square().sum().backward()
    for name, p in low.named_parameters():
        assert p.grad is not None and p.grad.isfinite().all() and p.grad.abs().sum() > 0, name


def test_bad_input():
    with pytest.raises(ValueError, match='method'):
        LowRankMHSA(E, HEADS, 4, method='performer')
    with pytest.raises(ValueError, match='max_seq_len'):
        LowRankMHSA(E, HEADS, 4, method='linformer')
    low = LowRankMHSA(E, HEADS, 4, method='linformer', max_seq_len=8)
    with pytest.raises(ValueError, match='exceed linformer max_seq_len=8'):
        low(torch.randn(1, 3, E), torch.randn(1, 9, E), torch.randn(1, 9, E))
    with pytest.raises(ValueError, match='batch first'):
        low(torch.randn(3, E), torch.randn(1, 8, E), torch.randn(1, 8, E))
    with pytest.raises(ValueError, match='every key'):
        low(torch.randn(1, 3, E), torch.randn(1, 8, E), torch.randn(1, 8, E),
            key_padding_mask=torch.ones(1, 8, dtype=torch.bool))
