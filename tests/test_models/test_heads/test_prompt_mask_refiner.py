"""PromptMaskRefiner: identity at init, click maps on the right cells, gradients, and it learns a
local correction around a positive click that a query-level mask cannot make."""
import pytest
import torch
import torch.nn.functional as F

from seg.models.heads import PromptMaskRefiner
from seg.registry import MODELS
from seg.structures import build_prompts
from tests.test_models.tiny_cases.heads import HEAD, TEXT, C, _prompts


def _inputs(r: int = 3, h: int = 8, w: int = 8):
    coords = torch.rand(r, 2, 2)
    labels = torch.tensor([[1, 0], [1, -1], [-1, -1]])[:r]
    return (torch.randn(r, C, h, w), torch.randn(r, h, w), torch.randn(r, h, w),
            torch.tensor([True, False, True])[:r], coords, labels)


def test_identity_at_init_even_after_init_weights():
    refiner = PromptMaskRefiner(feat_channels=C, hidden_channels=4,
                                init_cfg=dict(type='Normal', layer='Conv2d', std=1.0))
    refiner.init_weights()
    args = _inputs()
    assert torch.equal(refiner(*args), args[1])


def test_propagation_gain_pulls_only_propagated_rows_to_their_previous_mask():
    refiner = PromptMaskRefiner(feat_channels=C, hidden_channels=4).eval()
    feat, logits, prompt, valid, coords, labels = _inputs()
    propagated = torch.tensor([True, True, False])
    with torch.no_grad():
        assert torch.equal(refiner(feat, logits, prompt, valid, coords, labels, propagated), logits)
        refiner.propagation_gain.fill_(1.0)
        out = refiner(feat, logits, prompt, valid, coords, labels, propagated)
    torch.testing.assert_close(out[0], prompt[0])  # propagated, a valid mask: the previous mask
    assert torch.equal(out[1], logits[1])  # no valid mask prompt: nothing to pull towards
    assert torch.equal(out[2], logits[2])  # a user's mask prompt is not a propagated mask
    # the gain learns: its gradient is non-zero as soon as the previous mask differs
    refiner.train()
    loss = refiner(feat, logits, prompt, valid, coords, labels, propagated).sum()
    loss.backward()
    assert refiner.propagation_gain.grad.abs() > 0


def test_fixed_propagation_gain_copies_the_bounded_previous_mask_and_is_not_trained():
    refiner = PromptMaskRefiner(feat_channels=C, hidden_channels=4, propagation_gain=1.0)
    refiner.init_weights()
    feat, logits, _, valid, coords, labels = _inputs()
    prompt = torch.tensor([-40.0, -2.0, 3.0, 40.0]).repeat(3, 16).view(3, 8, 8)
    out = refiner(feat, logits, prompt, valid, coords, labels, torch.tensor([True, True, True]))
    bound = PromptMaskRefiner.PROPAGATED_LOGIT_BOUND
    # with the correction still zero, a tracked object's mask is its previous one, bounded
    torch.testing.assert_close(out[0], prompt[0].clamp(-bound, bound))
    torch.testing.assert_close(out[0].abs().aminmax(), (torch.tensor(2.0), torch.tensor(bound)))
    assert torch.equal(out[1], logits[1])  # no valid mask prompt
    assert 'propagation_gain' not in dict(refiner.named_parameters())
    assert 'propagation_gain' not in refiner.state_dict()  # the config's constant, not a weight


def test_head_with_a_fresh_refiner_decodes_exactly_as_without():
    torch.manual_seed(0)
    plain = MODELS.build(HEAD)
    torch.manual_seed(0)
    with_refiner = MODELS.build(dict(HEAD, prompt_refiner=dict(type='PromptMaskRefiner')))
    embeds = torch.randn(plain.num_classes, TEXT)
    feats = torch.randn(2, C, 2, 8, 8)
    outs = []
    for head in (plain, with_refiner):
        head.set_class_embeddings(embeds)
        head.eval()
        torch.manual_seed(1)
        tokens = head.prompt_encoder([_prompts(), None], [0, 1], feats, (32, 32),
                                     [torch.randn(2, TEXT), None])
        outs.append(head(feats, tokens, prompt_exits=[1]))
    assert torch.equal(outs[0].final.prm_mask, outs[1].final.prm_mask)
    assert torch.equal(outs[0].exits[1].prm_mask, outs[1].exits[1].prm_mask)


def test_refines_only_the_prompted_frame_of_a_clip():
    head = MODELS.build(dict(HEAD, prompt_refiner=dict(type='PromptMaskRefiner', hidden_channels=4)))
    head.set_class_embeddings(torch.randn(head.num_classes, TEXT))
    torch.nn.init.normal_(head.prompt_refiner.out_conv.weight, std=0.5)
    head.eval()
    feats = torch.randn(2, C, 3, 8, 8)
    tokens = head.prompt_encoder([_prompts(), None], [1, 0], feats, (32, 32),
                                 [torch.randn(2, TEXT), None])
    with torch.no_grad():
        refined = head(feats, tokens).final.prm_mask
        head.prompt_refiner = None
        plain = head(feats, tokens).final.prm_mask
    assert torch.equal(refined[:, [0, 2]], plain[:, [0, 2]])  # frames without the prompts
    assert not torch.allclose(refined[:, 1], plain[:, 1])


@pytest.mark.parametrize('x, y', [(3, 4), (20, 9), (31, 31), (0, 17)])
def test_click_maps_light_the_clicked_cell(x, y):
    stride, size = 4, 32  # an 8x8 grid over a 32x32 input
    refiner = PromptMaskRefiner(feat_channels=C, click_sigma=0.7)
    head = MODELS.build(HEAD)
    points = build_prompts(points=[[[x, y], [5, 30]]], point_labels=[[1, 0]])
    coords = head.prompt_encoder([points], [0], torch.randn(1, C, 1, 8, 8), (size, size),
                                 [None]).point_coords
    maps = refiner.click_maps(coords, torch.tensor([[1, 0]]), (size // stride, ) * 2)
    pos, neg = maps[0]
    assert divmod(int(pos.argmax()), 8) == (y // stride, x // stride)
    assert divmod(int(neg.argmax()), 8) == (30 // stride, 5 // stride)
    # padding clicks (label -1) light nothing
    none = refiner.click_maps(coords, torch.tensor([[-1, -1]]), (8, 8))
    assert none.abs().sum() == 0


def test_encoder_carries_the_raw_clicks_normalised_by_the_input_size():
    head = MODELS.build(HEAD)
    tokens = head.prompt_encoder([_prompts(), None], [0, 0], torch.randn(2, C, 1, 8, 8), (32, 64),
                                 [None, None])
    # _prompts: object 0 clicks (3, 4) positive and (20, 9) negative, object 1 (12, 12) positive
    assert torch.allclose(tokens.point_coords[0],
                          torch.tensor([[3.5 / 64, 4.5 / 32], [20.5 / 64, 9.5 / 32]]))
    assert tokens.point_labels.tolist() == [[1, 0], [1, -1]]


def test_gradients_reach_every_parameter_after_one_step():
    torch.manual_seed(0)
    refiner = PromptMaskRefiner(feat_channels=C, hidden_channels=4)
    optim = torch.optim.SGD(refiner.parameters(), lr=0.1)
    args = (*_inputs(), torch.tensor([True, False, False]))  # row 0 tracked: the gain learns
    target = (torch.rand(3, 8, 8) > 0.5).float()
    for _ in range(2):  # the zero output conv blocks the others' gradient on the first step only
        optim.zero_grad()
        F.binary_cross_entropy_with_logits(refiner(*args), target).backward()
        optim.step()
    dead = [n for n, p in refiner.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, dead


def test_learns_to_add_the_region_around_a_positive_click():
    """A fixed query mask misses a square object; given a positive click inside it (and the
    previous mask as mask prompt), the refiner alone learns to add the square."""
    torch.manual_seed(0)
    h = w = 16
    feat = torch.randn(1, C, h, w)
    gt = torch.zeros(1, h, w)
    gt[0, 2:7, 2:7] = 1     # the object the click is on
    gt[0, 9:14, 9:14] = 1   # already segmented by the query
    current = torch.where(gt.bool() & (torch.arange(h)[:, None] >= 9), 6.0, -6.0)
    prompt = current.clone()
    click = torch.tensor([[[4.5 / w, 4.5 / h]]])  # the centre of cell (4, 4)
    label = torch.tensor([[1]])
    refiner = PromptMaskRefiner(feat_channels=C, hidden_channels=8, num_layers=3)
    optim = torch.optim.Adam(refiner.parameters(), lr=1e-2)

    def iou(logits):
        pred, obj = logits > 0, gt.bool()
        return float((pred & obj).sum() / (pred | obj).sum())

    args = (feat, current, prompt, torch.tensor([True]), click, label)
    before = iou(refiner(*args))
    for _ in range(150):
        optim.zero_grad()
        F.binary_cross_entropy_with_logits(refiner(*args), gt).backward()
        optim.step()
    after = iou(refiner(*args).detach())
    assert before == pytest.approx(0.5)
    assert after > 0.95, (before, after)


def test_bad_shapes_raise():
    refiner = PromptMaskRefiner(feat_channels=C)
    feat, mask, prompt, valid, coords, labels = _inputs()
    with pytest.raises(ValueError, match='feat must be'):
        refiner(feat[:, :4], mask, prompt, valid, coords, labels)
    with pytest.raises(ValueError, match='prompt_logits must be'):
        refiner(feat, mask, prompt[:2], valid, coords, labels)
    with pytest.raises(ValueError, match='point_coords'):
        refiner(feat, mask, prompt, valid, coords, labels[:, :1])
    with pytest.raises(ValueError, match='num_layers'):
        PromptMaskRefiner(feat_channels=C, num_layers=0)
