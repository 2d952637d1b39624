import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from seg.models.backbones.modules import TokenPruner
from seg.registry import MODELS


class _Recorder:
    """A ``process`` that doubles its input and records what it was given."""

    def __init__(self) -> None:
        self.seen = []

    def __call__(self, kept: torch.Tensor) -> torch.Tensor:
        self.seen.append(kept.detach().clone())
        return kept * 2 + 1


@pytest.mark.parametrize('score', ['entropy', 'saliency'])
@pytest.mark.parametrize('keep_ratio,n,expected_k', [(0.3, 10, 3), (0.25, 37, 10), (0.7, 10, 7),
                                                     (0.01, 20, 1)])
def test_processes_exactly_ceil_of_the_highest_scoring_tokens(score, keep_ratio, n, expected_k):
    assert expected_k == max(1, math.ceil(keep_ratio * n - 1e-9))
    pruner = TokenPruner(keep_ratio, embed_dim=8, score=score)
    tokens = torch.randn(2, n, 8)
    rec = _Recorder()
    out = pruner(tokens, rec)

    idx = pruner.last_keep_idx
    assert idx.shape == (2, expected_k) and rec.seen[0].shape == (2, expected_k, 8)
    scores = pruner.compute_scores(tokens)
    for b in range(2):
        kept = set(idx[b].tolist())
        pruned = sorted(set(range(n)) - kept)
        # every kept token scores at least as high as every pruned one
        if pruned:
            assert scores[b, idx[b]].min() >= scores[b, pruned].max()
        assert torch.equal(out[b, idx[b]], tokens[b, idx[b]] * 2 + 1)
        assert torch.equal(out[b, pruned], tokens[b, pruned])  # pass through unchanged
    assert torch.equal(idx, idx.sort(dim=1).values)  # ascending, as documented


def test_saliency_keeps_hand_set_top_tokens():
    pruner = TokenPruner(0.5, embed_dim=4, score='saliency', score_dim=4)
    # score = mlp(norm(x)): make the MLP read the first normalised channel only
    with torch.no_grad():
        pruner.mlp[0].weight.zero_()
        pruner.mlp[0].bias.fill_(10.0)  # keep GELU in its (near-)linear regime
        pruner.mlp[0].weight[0, 0] = 1.0
        pruner.mlp[2].weight.zero_()
        pruner.mlp[2].weight[0, 0] = 1.0
    tokens = torch.zeros(1, 6, 4)
    tokens[0, :, 0] = torch.tensor([0.0, 5.0, 1.0, 4.0, 2.0, 3.0])
    pruner(tokens, lambda t: t)
    assert pruner.last_keep_idx.tolist() == [[1, 3, 5]]


def test_entropy_prefers_focused_attention():
    """A token whose attention is peaked (low entropy) outranks tokens attending uniformly."""
    pruner = TokenPruner(1 / 4, embed_dim=4, score='entropy', score_dim=4)
    with torch.no_grad():
        for proj in (pruner.q_proj, pruner.k_proj):
            proj.weight.copy_(torch.eye(4) * 10)
            proj.bias.zero_()
    # tokens 0-2 are identical (uniform attention among them); token 3 is orthogonal to them and
    # attends almost only to itself
    tokens = torch.tensor([[[1., -1., 1., -1.], [1., -1., 1., -1.], [1., -1., 1., -1.],
                            [1., 1., -1., -1.]]])
    pruner(tokens, lambda t: t)
    assert pruner.last_keep_idx.tolist() == [[3]]


def test_entropy_scores_match_hand_computation():
    pruner = TokenPruner(0.5, embed_dim=6, score='entropy', num_heads=2, score_dim=4)
    x = torch.randn(1, 5, 6)
    h = pruner.norm(x)
    q = pruner.q_proj(h).view(1, 5, 2, 2).transpose(1, 2)
    k = pruner.k_proj(h).view(1, 5, 2, 2).transpose(1, 2)
    attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(2), -1)
    expected = (attn * attn.log()).sum(-1).mean(1)
    torch.testing.assert_close(pruner.compute_scores(x), expected)


def test_num_score_keys_uses_strided_keys():
    full = TokenPruner(0.5, embed_dim=6, score='entropy', score_dim=6)
    strided = TokenPruner(0.5, embed_dim=6, score='entropy', score_dim=6, num_score_keys=4)
    strided.load_state_dict(full.state_dict())
    x = torch.randn(2, 10, 6)
    # 10 tokens, at most 4 keys -> stride ceil(10 / 4) = 3 -> keys 0, 3, 6, 9
    assert not torch.allclose(strided.compute_scores(x), full.compute_scores(x))
    h = full.norm(x)
    q, k = full.q_proj(h), full.k_proj(h[:, ::3])
    attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(6), -1)
    torch.testing.assert_close(strided.compute_scores(x), (attn * attn.log()).sum(-1))


@pytest.mark.parametrize('score', ['entropy', 'saliency'])
def test_keep_ratio_one_equals_no_pruning(score):
    pruner = TokenPruner(1.0, embed_dim=8, score=score)
    block = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    tokens = torch.randn(2, 13, 8)
    assert torch.equal(pruner(tokens, block), block(tokens))


def test_aux_is_gathered_with_the_kept_tokens():
    pruner = TokenPruner(0.5, embed_dim=4, score='saliency')
    tokens = torch.randn(2, 8, 4)
    aux = torch.arange(16.).view(2, 8, 1).expand(2, 8, 3)
    got = {}

    def process(kept, aux_kept):
        got['aux'] = aux_kept
        return kept + aux_kept[..., :1]

    out = pruner(tokens, process, aux=aux)
    idx = pruner.last_keep_idx
    torch.testing.assert_close(got['aux'][..., 0], (idx + torch.tensor([[0], [8]])).float())
    assert out.shape == tokens.shape


@pytest.mark.parametrize('score', ['entropy', 'saliency'])
def test_every_parameter_gets_a_gradient(score):
    pruner = TokenPruner(0.5, embed_dim=8, score=score)
    block = nn.Linear(8, 8)
    tokens = torch.randn(2, 12, 8, requires_grad=True)
    pruner(tokens, block).square().sum().backward()
    for name, p in pruner.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert tokens.grad.abs().sum() > 0


def test_video_mode_reuses_cached_scores_until_refresh():
    pruner = TokenPruner(0.5, embed_dim=8, score='saliency', refresh_period=3)
    calls = []
    real = pruner.compute_scores
    pruner.compute_scores = lambda t: (calls.append(1), real(t))[1]
    frames = [torch.randn(1, 10, 8) for _ in range(7)]

    kept = []
    for f in frames:
        pruner(f, lambda t: t, video=True)
        kept.append(pruner.last_keep_idx)
    # scored on frames 0, 3, 6 only; cached frames keep the indices of the last scored frame
    assert len(calls) == 3
    assert [k.tolist() for k in kept[1:3]] == [kept[0].tolist()] * 2
    assert [k.tolist() for k in kept[4:6]] == [kept[3].tolist()] * 2

    pruner.reset()
    pruner(frames[1], lambda t: t, video=True)
    assert len(calls) == 4 and pruner.last_scored
    # a frame of another size cannot reuse the cache
    pruner(torch.randn(1, 12, 8), lambda t: t, video=True)
    assert len(calls) == 5
    # image mode always scores and leaves the video cache alone
    pruner(frames[2], lambda t: t)
    assert len(calls) == 6


def _flops(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def test_process_flops_shrink_with_keep_ratio():
    tokens, c = torch.randn(2, 40, 16), 16
    block = nn.Linear(c, c, bias=False)
    for ratio, k in ((1.0, 40), (0.5, 20), (0.1, 4)):
        pruner = TokenPruner(ratio, embed_dim=c, score='entropy')
        scoring = _flops(lambda: pruner.compute_scores(tokens))
        process_flops = _flops(lambda: pruner(tokens, block)) - scoring
        assert scoring > 0 and process_flops == 2 * 2 * k * c * c  # one [B*K, C] x [C, C] matmul


def test_built_from_registry_and_bad_input():
    pruner = MODELS.build(dict(type='TokenPruner', keep_ratio=0.5, embed_dim=4, score='saliency'))
    assert isinstance(pruner, TokenPruner)
    with pytest.raises(ValueError, match='keep_ratio'):
        TokenPruner(0.0, embed_dim=4)
    with pytest.raises(ValueError, match='score'):
        TokenPruner(0.5, embed_dim=4, score='variance')
    with pytest.raises(ValueError, match=r'tokens must be \[B, N, 4\]'):
        pruner(torch.randn(1, 5, 3), lambda t: t)
    with pytest.raises(ValueError, match='process must map'):
        pruner(torch.randn(1, 6, 4), lambda t: t[:, :1])
