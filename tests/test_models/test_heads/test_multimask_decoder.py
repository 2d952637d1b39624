"""Multimask output (SAM's ambiguity rule) and independent prompt queries."""
import torch
from mmengine.config import Config

import seg  # noqa: F401
from seg.models.heads import DynamicQueryStage, MultimaskDecoder
from seg.registry import MODELS
from tests.conftest import REPO_ROOT
from tests.test_models.tiny_cases.detectors import fastsam2_model_cfg, packed_image, run_loss
from tests.test_models.tiny_cases.heads import HEAD, TEXT, _prompts

C = 16


def test_candidates_differ_and_have_their_own_queries():
    dec = MultimaskDecoder(feat_channels=C, num_masks=3)
    cand, masks = dec(torch.randn(4, C), torch.randn(4, C, 8, 8))
    assert cand.shape == (4, 3, C) and masks.shape == (4, 3, 8, 8)
    assert not torch.allclose(masks[:, 0], masks[:, 1])


def test_ambiguity_rule_trains_only_the_best_candidate_of_a_single_click():
    head = MODELS.build(dict(HEAD, multimask_decoder=dict(type='MultimaskDecoder')))
    target = torch.zeros(2, 32, 32, dtype=torch.bool)
    target[:, 8:24, 8:24] = True
    good = torch.where(target[:, ::4, ::4], 20.0, -20.0)  # the target on the 8 x 8 grid
    cands = torch.stack([good, torch.randn(2, 8, 8), torch.randn(2, 8, 8)], 1).requires_grad_()
    iou = torch.full((2, 3), 0.5, requires_grad=True)
    single = torch.tensor([True, False])
    losses = head._multimask_loss(cands, iou, target, single)
    # the perfect candidate is the minimum: far below three wrong ones
    wrong = head._multimask_loss(-good[:, None].expand(-1, 3, -1, -1), iou, target, single)
    assert losses['loss_prompt_multimask'] < 0.25 * wrong['loss_prompt_multimask']
    losses['loss_prompt_multimask'].backward()
    grad = cands.grad.flatten(2).abs().sum(-1)
    assert grad[0, 1:].sum() == 0 and grad[1].sum() == 0  # the others and the multi-prompt row
    losses['loss_prompt_multimask_iou'].backward()
    assert (iou.grad != 0).all()  # every candidate's IoU is supervised
    none = head._multimask_loss(cands, iou, target, torch.tensor([False, False]))
    assert none['loss_prompt_multimask'] == 0


def test_isolated_queries_do_not_see_each_other():
    stage = DynamicQueryStage(feat_channels=C, num_heads=2, ffn_channels=32, cls_channels=8).eval()
    feat, q, m = torch.randn(1, C, 1, 8, 8), torch.randn(1, 3, C), torch.randn(1, 3, 1, 8, 8)
    alone = stage(q[:, :1], feat, m[:, :1], isolate=True)
    together = stage(q, feat, m, isolate=True)
    mixed = stage(q, feat, m)
    for a, b, c in zip(alone, together, mixed):
        assert torch.allclose(a[:, 0], b[:, 0], atol=1e-6)
        assert not torch.allclose(a[:, 0], c[:, 0], atol=1e-6)


def test_training_loss_of_the_fastsam2_config_has_the_multimask_terms():
    assert Config.fromfile(str(REPO_ROOT / 'configs/fastsam2/model_fastsam2_tiny.py')) \
        .model.panoptic_head.multimask_decoder.num_masks == 3
    cfg = fastsam2_model_cfg()
    cfg.train_cfg = dict(interactive_rounds=None)
    model = MODELS.build(cfg).train()
    losses = run_loss(model, [packed_image()])
    depth = model.task_router.rules['interactive']['num_stages']
    for key in ('loss_prompt_multimask', 'loss_prompt_multimask_iou',
                f'exit{depth}.loss_prompt_multimask'):
        assert key in losses and torch.isfinite(losses[key])
    # the second prompt of ``packed_image`` is a single click: its best candidate is trained
    assert losses['loss_prompt_multimask'] > 0
    sum(losses.values()).backward()
    assert model.panoptic_head.multimask_decoder.output_tokens.weight.grad.abs().sum() > 0


def test_one_token_attention_is_the_value_projection_with_the_same_gradients():
    """``attend_alone`` (the isolated prompt queries' attention) equals ``nn.MultiheadAttention``
    over one-token sequences, forward and backward."""
    from seg.models.heads.dynamic_query_stage import attend, attend_alone
    attn = torch.nn.MultiheadAttention(C, 2, batch_first=True)
    x = torch.randn(5, 1, C, requires_grad=True)
    ref = attend(attn, x, None)
    got = attend_alone(attn, x)
    assert torch.allclose(got, ref, atol=1e-6)
    (g_ref, ) = torch.autograd.grad(ref.square().sum(), x)
    (g_got, ) = torch.autograd.grad(got.square().sum(), x)
    assert torch.allclose(g_got, g_ref, atol=1e-5)


def test_candidates_only_decode_skips_the_single_mask_and_keeps_the_candidates():
    """``single_mask=False`` (SAM2's multimask output) forms no single prompt mask (no adaptor
    mask prediction, no refiners) and the same candidates and IoUs as the full decode."""
    torch.manual_seed(0)
    head = MODELS.build(dict(HEAD, multimask_decoder=dict(type='MultimaskDecoder'))).eval()
    refiner = MODELS.build(dict(type='MaskStateRefiner', feat_channels=C))
    calls = []
    refiner.register_forward_hook(lambda *_: calls.append('refiner'))
    head.prompt_adaptor.mask_embed.register_forward_hook(lambda *_: calls.append('adaptor mask'))
    head.set_class_embeddings(torch.randn(head.num_classes, TEXT))
    feats = torch.randn(1, C, 1, 8, 8)
    prompts = head.prompt_encoder([_prompts()], [0], feats, (32, 32), [None])
    with torch.no_grad():
        full = head(feats, prompts, run_objects=False, mask_refiner=refiner, multimask=True).final
        assert calls == ['adaptor mask', 'refiner']
        calls.clear()
        only = head(feats, prompts, run_objects=False, mask_refiner=refiner, multimask=True,
                    single_mask=False).final
    assert calls == [] and only.prm_mask is None and only.prm_iou is None
    assert torch.allclose(only.prm_multi_mask, full.prm_multi_mask, atol=1e-6)
    assert torch.allclose(only.prm_multi_iou, full.prm_multi_iou, atol=1e-6)
    # nor the prompts' classes, in any step, when the caller reads none
    with torch.no_grad():
        out = head(feats, prompts, run_objects=False, mask_refiner=refiner, multimask=True,
                   single_mask=False, classes=False)
    assert all(s.prm_cls is None and s.prm_cls_embed is None for s in out.steps)
    assert only.prm_cls is not None
    # without candidates the single mask is the output, and its class is formed
    with torch.no_grad():
        single = head(feats, prompts, run_objects=False, multimask=False, single_mask=False,
                      classes=False).final
    assert single.prm_cls is not None and single.prm_mask is not None
    assert torch.allclose(out.final.prm_multi_mask, full.prm_multi_mask, atol=1e-6)
    assert torch.allclose(out.final.prm_multi_iou, full.prm_multi_iou, atol=1e-6)
