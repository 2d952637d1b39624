import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seg.models.utils import SAM2DistillLoss
from seg.registry import MODELS

FEAT_KEYS = ('loss_distill_feat', 'distill_cos')
MASK_LOSS_KEYS = ('loss_distill_mask', 'loss_distill_prompt')


def _pair(student='stage2', teacher=0, cs=8, ct=8, **kw):
    return dict(student=student, teacher=teacher, student_channels=cs, teacher_channels=ct, **kw)


def _identity(loss: SAM2DistillLoss, index: int = 0) -> None:
    proj = loss.projections[index]
    with torch.no_grad():
        proj.weight.copy_(torch.eye(proj.out_channels, proj.in_channels)[:, :, None, None])
        proj.bias.zero_()


def test_feature_loss_zero_iff_student_equals_projected_teacher():
    torch.manual_seed(0)
    loss = MODELS.build(dict(type='SAM2DistillLoss', pairs=[_pair(cs=6, ct=10)]))
    f_t = torch.randn(2, 10, 5, 7)
    with torch.no_grad():
        f_s = loss.projections[0](f_t)  # student == W f_t with the (orthogonal) init W
    out = loss.feature_loss({'stage2': f_s}, [f_t])
    assert out['loss_distill_feat'].abs() < 1e-6
    assert abs(out['distill_cos'] - 1) < 1e-6
    out = loss.feature_loss({'stage2': f_s + 0.3 * torch.randn_like(f_s)}, [f_t])
    assert out['loss_distill_feat'] > 1e-2 and out['distill_cos'] < 1
    # the init is not degenerate: full rank (semi-orthogonal rows)
    w = loss.projections[0].weight.flatten(1)
    torch.testing.assert_close(w @ w.T, torch.eye(6), atol=1e-5, rtol=0)


def test_feature_loss_matches_its_formula_in_either_resize_order():
    """The 1x1 conv and the bilinear resize commute, whichever grid the conv runs on."""
    torch.manual_seed(0)
    loss = SAM2DistillLoss([_pair(cs=6, ct=10)], alpha=0.7, beta=0.4, loss_weight=1.5)
    proj = loss.projections[0]
    nn.init.normal_(proj.bias)
    for s_size, t_size in (((6, 4), (16, 16)), ((16, 12), (5, 5))):  # down- and up-sampling
        f_s, f_t = torch.randn(2, 6, *s_size), torch.randn(2, 10, *t_size)
        out = loss.feature_loss({'stage2': f_s}, [f_t])
        for target in (proj(F.interpolate(f_t, s_size, mode='bilinear')),
                       F.interpolate(proj(f_t), s_size, mode='bilinear')):
            cos = F.cosine_similarity(f_s, target, dim=1)
            expected = 1.5 * (0.7 * (f_s - target).square().mean() + 0.4 * (1 - cos).mean())
            torch.testing.assert_close(out['loss_distill_feat'], expected, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out['distill_cos'], cos.mean(), atol=1e-5, rtol=1e-5)


def test_spatial_alignment_of_a_stretched_teacher():
    torch.manual_seed(0)
    loss = SAM2DistillLoss([_pair()])
    _identity(loss)
    f_s = torch.randn(2, 8, 6, 4)  # a non-square student map, the teacher's square grid is 12 x 12
    f_t = F.interpolate(f_s, size=(12, 12), mode='nearest')  # factors 2 and 3: exactly invertible
    assert loss.feature_loss({'stage2': f_s}, [f_t])['loss_distill_feat'] < 1e-6
    shuffled = f_t.flip(-1)
    assert loss.feature_loss({'stage2': f_s}, [shuffled])['loss_distill_feat'] > 0.1


def test_projection_gets_gradients_and_the_teacher_none():
    torch.manual_seed(0)
    loss = SAM2DistillLoss([_pair(cs=6, ct=10)])
    f_s = torch.randn(2, 6, 4, 4, requires_grad=True)
    f_t = torch.randn(2, 10, 8, 8, requires_grad=True)
    out = loss.feature_loss({'stage2': f_s}, [f_t])
    assert not out['distill_cos'].requires_grad
    out['loss_distill_feat'].backward()
    assert f_t.grad is None
    assert f_s.grad.abs().sum() > 0
    assert loss.projections[0].weight.grad.abs().sum() > 0
    assert loss.projections[0].bias.grad.abs().sum() > 0


def test_loss_weight_scales_linearly():
    torch.manual_seed(0)
    pairs = [_pair(cs=6, ct=10)]
    base, scaled = SAM2DistillLoss(pairs), SAM2DistillLoss(pairs, loss_weight=3.0)
    scaled.load_state_dict(base.state_dict())
    f_s, f_t = torch.randn(2, 6, 4, 4), torch.randn(2, 10, 8, 8)
    s_logits, t_logits = torch.randn(3, 8, 8), torch.randn(3, 8, 8)
    a = {**base.feature_loss({'stage2': f_s}, [f_t]), **base.mask_loss(s_logits, t_logits)}
    b = {**scaled.feature_loss({'stage2': f_s}, [f_t]), **scaled.mask_loss(s_logits, t_logits)}
    assert a.keys() == b.keys() == set(FEAT_KEYS + MASK_LOSS_KEYS + ('distill_mask_iou', ))
    for key in a:
        factor = 3.0 if key.startswith('loss') else 1.0  # logging values are not losses
        torch.testing.assert_close(b[key], factor * a[key])
    assert all(a[k] > 0 for k in FEAT_KEYS + MASK_LOSS_KEYS)


def test_multi_level_pairs_sum_with_their_weights():
    torch.manual_seed(0)
    p1, p2 = _pair('stage2', 1, cs=6, ct=10), _pair('neck', 0, cs=4, ct=12)
    both = SAM2DistillLoss([dict(p1, weight=0.5), dict(p2, weight=2.0)])
    one, two = SAM2DistillLoss([p1]), SAM2DistillLoss([p2])
    one.projections[0].load_state_dict(both.projections[0].state_dict())
    two.projections[0].load_state_dict(both.projections[1].state_dict())
    student = {'stage2': torch.randn(2, 6, 8, 8), 'neck': torch.randn(2, 4, 16, 16),
               'stage3': torch.randn(2, 3, 4, 4)}  # unused features are ignored
    teacher = [torch.randn(2, 12, 20, 20), torch.randn(2, 10, 10, 10)]
    out = both.feature_loss(student, teacher)
    r1, r2 = one.feature_loss(student, teacher), two.feature_loss(student, teacher)
    torch.testing.assert_close(out['loss_distill_feat'],
                               0.5 * r1['loss_distill_feat'] + 2.0 * r2['loss_distill_feat'])
    torch.testing.assert_close(out['distill_cos'], (r1['distill_cos'] + r2['distill_cos']) / 2)


def test_bad_pairs_and_features_raise_clear_errors():
    loss = SAM2DistillLoss([_pair(cs=6, ct=10)])
    f_s, f_t = torch.randn(2, 6, 4, 4), torch.randn(2, 10, 8, 8)
    with pytest.raises(KeyError, match=r"'stage2' is missing; available: \['neck', 'stage1'\]"):
        loss.feature_loss({'neck': f_s, 'stage1': f_s}, [f_t])
    with pytest.raises(ValueError, match=r"'stage2' <- teacher level 0.*student \(2, 5, 4, 4\)"):
        loss.feature_loss({'stage2': torch.randn(2, 5, 4, 4)}, [f_t])
    with pytest.raises(ValueError, match=r'teacher \(2, 12, 8, 8\)'):
        loss.feature_loss({'stage2': f_s}, [torch.randn(2, 12, 8, 8)])
    with pytest.raises(ValueError, match=r'student \(1, 2, 6, 4, 4\)'):  # clips must be flattened
        loss.feature_loss({'stage2': f_s[None]}, [f_t])
    with pytest.raises(ValueError, match='same N'):
        loss.feature_loss({'stage2': f_s}, [f_t[:1]])
    with pytest.raises(IndexError, match='only 1 feature levels'):
        SAM2DistillLoss([_pair(teacher=1)]).feature_loss({'stage2': f_s}, [f_t])
    with pytest.raises(ValueError,
                       match=r"missing keys \['teacher_channels'\], unknown keys \['w'\]"):
        SAM2DistillLoss([dict(student='neck', teacher=0, student_channels=4, w=1.0)])
    with pytest.raises(ValueError, match='student_channels must be a positive int'):
        SAM2DistillLoss([_pair(cs=0)])
    with pytest.raises(ValueError, match='no feature pairs'):
        SAM2DistillLoss([]).feature_loss({'stage2': f_s}, [f_t])
    with pytest.raises(ValueError, match='temperature'):
        SAM2DistillLoss([], temperature=0)
    with pytest.raises(ValueError, match=r'student \(3, 4, 4\), teacher \(2, 4, 4\)'):
        loss.mask_loss(torch.randn(3, 4, 4), torch.randn(2, 4, 4))
    with pytest.raises(ValueError, match=r'valid must be bool \[3\]'):
        loss.mask_loss(torch.randn(3, 4, 4), torch.randn(3, 4, 4), torch.ones(3))


def test_mask_losses_are_minimal_when_student_equals_teacher():
    torch.manual_seed(0)
    loss = SAM2DistillLoss([], gamma=1.0, delta=1.0, temperature=2.0)
    t = 3 * torch.randn(4, 8, 8)
    s = t.clone().requires_grad_(True)
    out = loss.mask_loss(s, t)
    assert out['loss_distill_prompt'].abs() < 1e-6
    p = t.sigmoid()  # BCE against soft targets bottoms out at the teacher's entropy, not 0
    entropy = F.binary_cross_entropy(p, p)
    torch.testing.assert_close(out['loss_distill_mask'], entropy)
    out['loss_distill_mask'].backward(retain_graph=True)
    assert s.grad.abs().max() < 1e-7  # stationary point of the BCE
    s.grad = None
    out['loss_distill_prompt'].backward()
    assert s.grad.abs().max() < 1e-7
    assert out['distill_mask_iou'] == 1
    other = loss.mask_loss(t + torch.randn_like(t), t)
    assert other['loss_distill_mask'] > entropy + 1e-3 and other['loss_distill_prompt'] > 1e-3
    assert other['distill_mask_iou'] < 1


def test_prompt_kl_is_the_spatial_softmax_kl():
    torch.manual_seed(0)
    loss = SAM2DistillLoss([], delta=0.5, temperature=2.0)
    s, t = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    p_s, p_t = (s.flatten(1) / 2).softmax(1), (t.flatten(1) / 2).softmax(1)
    expected = 0.5 * (p_s * (p_s / p_t).log()).sum(1).mean()
    torch.testing.assert_close(loss.mask_loss(s, t)['loss_distill_prompt'], expected)
    # invariant to shifting a row's logits (only where the object is matters), unlike the BCE
    shifted = loss.mask_loss(s + torch.tensor([1.0, -2.0, 3.0])[:, None, None], t)
    torch.testing.assert_close(shifted['loss_distill_prompt'], expected)


def test_teacher_mask_logits_are_resized_to_the_student_grid():
    torch.manual_seed(0)
    loss = SAM2DistillLoss([])
    s, t = torch.randn(3, 6, 4), torch.randn(3, 6, 4)
    ref = loss.mask_loss(s, t)
    big = loss.mask_loss(s, F.interpolate(t[:, None], size=(12, 12), mode='nearest')[:, 0])
    for key in ref:
        torch.testing.assert_close(big[key], ref[key])


def test_valid_rows_only():
    torch.manual_seed(0)
    loss = SAM2DistillLoss([])
    s = torch.randn(4, 8, 8, requires_grad=True)
    t = torch.randn(4, 8, 8)
    valid = torch.tensor([True, False, True, False])
    out = loss.mask_loss(s, t, valid)
    s2, t2 = s.detach().clone(), t.clone()
    s2[~valid] = 50 * torch.randn(2, 8, 8)
    t2[~valid] = -50.0
    changed = loss.mask_loss(s2, t2, valid)
    sub = loss.mask_loss(s.detach()[valid], t[valid])
    for key in out:
        torch.testing.assert_close(changed[key], out[key])
        torch.testing.assert_close(sub[key], out[key])
    sum(out[k] for k in MASK_LOSS_KEYS).backward()
    assert s.grad[~valid].abs().max() == 0 and s.grad[valid].abs().sum() > 0
    # no valid row: zero losses that keep the graph (DDP needs every rank to backward), no IoU
    s.grad = None
    none = loss.mask_loss(s, t, torch.zeros(4, dtype=torch.bool))
    assert set(none) == set(MASK_LOSS_KEYS)
    assert all(none[k] == 0 and none[k].requires_grad for k in MASK_LOSS_KEYS)
    sum(none.values()).backward()
    assert s.grad is not None and s.grad.abs().max() == 0


def test_short_optimisation_raises_cosine_and_mask_iou():
    """A tiny student conv learns a fixed random teacher (other resolution and width) through W."""
    torch.manual_seed(0)
    images = torch.randn(4, 3, 32, 32)
    teacher_net = nn.Conv2d(3, 16, 3, padding=1)  # fixed random teacher: stride 1, 16 channels
    teacher_mask = nn.Conv2d(3, 2, 5, padding=2)
    with torch.no_grad():
        f_t = teacher_net(images)
        t_logits = teacher_mask(images).flatten(0, 1)  # 2 prompt rows per image
    student = nn.Conv2d(3, 8, 3, stride=2, padding=1)  # stride 2, 8 channels
    student_mask = nn.Conv2d(3, 2, 5, stride=2, padding=2)
    loss = SAM2DistillLoss([_pair('neck', 0, cs=8, ct=16)])
    params = [*student.parameters(), *student_mask.parameters(), *loss.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)

    def step():
        out = {**loss.feature_loss({'neck': student(images)}, [f_t]),
               **loss.mask_loss(student_mask(images).flatten(0, 1), t_logits)}
        return out, sum(v for k, v in out.items() if 'loss' in k)

    before, _ = step()
    for _ in range(100):
        opt.zero_grad()
        _, total = step()
        total.backward()
        opt.step()
    after, _ = step()
    print(f"cos {before['distill_cos']:.3f} -> {after['distill_cos']:.3f}, "
          f"mask IoU {before['distill_mask_iou']:.3f} -> {after['distill_mask_iou']:.3f}")
    assert after['distill_cos'] > 0.9 and after['distill_cos'] > before['distill_cos'] + 0.3
    # measured (seed 0): cos 0.02 -> 0.99, mask IoU 0.29 -> 0.75 (thresholded noise-like teacher
    # masks seen through a stride-2 student: the boundary pixels stay ambiguous)
    iou_before, iou_after = before['distill_mask_iou'], after['distill_mask_iou']
    assert iou_after > 0.65 and iou_after > iou_before + 0.3
    for key in ('loss_distill_feat', 'loss_distill_mask', 'loss_distill_prompt'):
        assert after[key] < before[key]
