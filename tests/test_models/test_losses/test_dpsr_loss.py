import pytest
import torch

from seg.models.losses import DPSRLoss
from seg.registry import MODELS


def test_hand_computed_values():
    loss = MODELS.build(dict(type='DPSRLoss', lambda_mask=2.0, lambda_feat=0.5, eps=0.0))
    prev = torch.tensor([[[10.0, -10.0], [-10.0, -10.0]]])  # ~ one pixel on
    curr = torch.zeros(1, 2, 2)  # probability 0.5 everywhere
    p = torch.sigmoid(prev)
    # V-Net Dice: 1 - 2 sum(pq) / (sum(q^2) + sum(p^2)), q = 0.5
    dice = 1 - 2 * (0.5 * p).sum() / (4 * 0.25 + (p * p).sum())
    out = loss(prev, curr, torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]]))
    torch.testing.assert_close(out['loss_dpsr_mask'], 2.0 * dice)
    torch.testing.assert_close(out['loss_dpsr_feat'], torch.tensor(0.5 * (1 + 4) / 2))


def test_zero_when_frames_agree():
    loss = DPSRLoss(eps=0.0)
    logits = torch.full((2, 5, 5), -30.0)
    logits[:, 1:3, 1:4] = 30.0  # saturated: probabilities 0/1
    embed = torch.randn(2, 4)
    out = loss(logits, logits.clone(), embed, embed.clone())
    assert out['loss_dpsr_mask'].abs() < 1e-6 and out['loss_dpsr_feat'] == 0


def test_previous_frame_is_a_detached_target():
    prev_mask = torch.randn(2, 4, 4, requires_grad=True)
    curr_mask = torch.randn(2, 4, 4, requires_grad=True)
    prev_emb = torch.randn(2, 3, requires_grad=True)
    curr_emb = torch.randn(2, 3, requires_grad=True)
    out = DPSRLoss()(prev_mask, curr_mask, prev_emb, curr_emb)
    sum(out.values()).backward()
    assert prev_mask.grad is None and prev_emb.grad is None
    assert curr_mask.grad.abs().sum() > 0 and curr_emb.grad.abs().sum() > 0


def test_valid_selects_objects_and_none_valid_gives_zero():
    loss = DPSRLoss()
    prev, curr = torch.randn(3, 4, 4), torch.randn(3, 4, 4, requires_grad=True)
    pe, ce = torch.randn(3, 5), torch.randn(3, 5)
    valid = torch.tensor([True, False, True])
    out = loss(prev, curr, pe, ce, valid)
    ref = loss(prev[valid], curr[valid], pe[valid], ce[valid])
    for k in ref:
        torch.testing.assert_close(out[k], ref[k])
    none = loss(prev, curr, pe, ce, torch.zeros(3, dtype=torch.bool))
    assert none['loss_dpsr_mask'] == 0 and none['loss_dpsr_feat'] == 0
    none['loss_dpsr_mask'].backward()  # still part of the graph
    assert curr.grad is not None


def test_previous_mask_of_another_size_is_resized():
    loss = DPSRLoss()
    prev = torch.randn(2, 4, 4)
    curr = torch.randn(2, 8, 8)
    up = torch.nn.functional.interpolate(prev[:, None], size=(8, 8), mode='bilinear')[:, 0]
    emb = torch.randn(2, 3)
    torch.testing.assert_close(loss(prev, curr, emb, emb)['loss_dpsr_mask'],
                               loss(up, curr, emb, emb)['loss_dpsr_mask'])


def test_bad_input():
    loss = DPSRLoss()
    with pytest.raises(ValueError, match='mask logits must be'):
        loss(torch.randn(2, 4, 4), torch.randn(3, 4, 4), torch.randn(2, 3), torch.randn(2, 3))
    with pytest.raises(ValueError, match='embeddings must both be'):
        loss(torch.randn(2, 4, 4), torch.randn(2, 4, 4), torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match='valid must be bool'):
        loss(torch.randn(2, 4, 4), torch.randn(2, 4, 4), torch.randn(2, 3), torch.randn(2, 3),
             torch.ones(2))
