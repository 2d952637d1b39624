"""RapSAMVideoHead: routed decoding (stages / query sets), the final-step mask refiner, DPSR."""
import pytest
import torch
from mmengine.structures import InstanceData

from seg.models.necks import MaskStateRefiner
from seg.registry import MODELS
from tests.test_models.tiny_cases.heads import C, HEAD, TEXT, _prompts

H = W = 32  # padded input size of the tiny prompts; features are 8x8 (stride 4)


def _head(**kwargs):
    head = MODELS.build(dict(HEAD, **kwargs))
    head.set_class_embeddings(torch.randn(head.num_classes, TEXT))
    return head.eval()


def _tokens(head, feats, mask_prompt: bool = True):
    # sample 0 has two prompted objects, sample 1 none (padding rows in the [B, N_max] layout)
    prompts = _prompts()
    if not mask_prompt:
        del prompts.masks
    return head.prompt_encoder([prompts, None], [0, 0], feats, (H, W), [torch.randn(2, TEXT), None])


def _count_calls(head) -> dict:
    """Record the query count of every call of each stage / adaptor."""
    calls = {}
    for name in ('stages.0', 'stages.1', 'panoptic_adaptor', 'prompt_adaptor'):
        calls[name] = []
        head.get_submodule(name).register_forward_hook(
            lambda m, args, out, name=name: calls[name].append(args[0].shape[1]))
    return calls


def test_forward_runs_the_requested_stages_and_query_sets_only():
    head = _head()
    feats = torch.randn(2, C, 1, 8, 8)
    tokens = _tokens(head, feats)
    calls = _count_calls(head)
    out = head(feats, tokens, run_objects=False, num_stages=1)
    # stage 0 once on the 2 prompt queries; no second stage; no panoptic adaptor
    assert calls == {'stages.0': [2], 'stages.1': [], 'panoptic_adaptor': [], 'prompt_adaptor': [2]}
    assert len(out.steps) == 2 and out.final.obj_mask is None and out.final.prm_mask.shape[0] == 2
    for v in calls.values():
        v.clear()
    head(feats, None, run_objects=True)
    assert calls == {'stages.0': [6], 'stages.1': [6], 'panoptic_adaptor': [6], 'prompt_adaptor': []}
    for v in calls.values():
        v.clear()
    out = head(feats, tokens, run_objects=True)
    assert calls == {'stages.0': [6, 2], 'stages.1': [6, 2], 'panoptic_adaptor': [6], 'prompt_adaptor': [2]}
    # the class embeddings live in the text space classify() compares with
    assert out.final.prm_cls_embed.shape == (2, TEXT) and out.final.obj_cls_embed.shape == (2, 6, TEXT)
    with pytest.raises(ValueError, match=r'num_stages must be in 1\.\.2'):
        head(feats, tokens, num_stages=3)


def test_refiner_is_identity_at_init_and_corrects_the_final_step_only():
    head = _head()
    feats = torch.randn(2, C, 3, 8, 8)
    tokens = _tokens(head, feats)
    refiner = MaskStateRefiner(feat_channels=C, hidden_channels=4)
    with torch.no_grad():
        plain = head(feats, tokens)
        refined = head(feats, tokens, mask_refiner=refiner)
        for a, b in zip(plain.steps, refined.steps):
            assert torch.equal(a.obj_mask, b.obj_mask) and torch.equal(a.prm_mask, b.prm_mask)
        # a constant correction of +1 (output conv bias) shows up on the final step, every frame and
        # every (padded-layout) prompt row, and nowhere else
        refiner.out_conv.bias.fill_(1.0)
        shifted = head(feats, tokens, mask_refiner=refiner)
    torch.testing.assert_close(shifted.final.obj_mask, plain.final.obj_mask + 1)
    torch.testing.assert_close(shifted.final.prm_mask, plain.final.prm_mask + 1)
    assert torch.equal(shifted.steps[0].prm_mask, plain.steps[0].prm_mask)


def _clip_targets(t: int, present=None) -> list:
    """Two instances per clip, the same box on every frame (``present`` [N, T] switches frames off)."""
    masks = torch.zeros(2, t, H, W, dtype=torch.bool)
    masks[0, :, 2:12, 2:14] = True
    masks[1, :, 16:30, 8:28] = True
    if present is not None:
        masks &= torch.as_tensor(present)[..., None, None]
    return [InstanceData(labels=torch.tensor([0, 3]), masks=masks) for _ in range(2)]


def test_dpsr_only_for_clips_and_zero_when_consecutive_frames_agree():
    head = _head(loss_dpsr=dict(type='DPSRLoss', lambda_mask=1.0, lambda_feat=1.0))
    head.train()
    prompt_targets = torch.tensor([0, 1])

    def losses(feats, targets):
        # no mask prompt: it would set the initial mask of its (first) frame only
        tokens = _tokens(head, feats, mask_prompt=False)
        return head.loss(head(feats, tokens), targets, prompt_targets, tokens, feats=feats)

    image = losses(torch.randn(2, C, 1, 8, 8), _clip_targets(1))
    assert not any(k.startswith('loss_dpsr') for k in image)
    # identical frames: identical masks and embeddings on consecutive frames; the Dice term is
    # then only its smoothing remainder eps / (sum p^2 + eps) (eps = 1e-3 over 64 pixels)
    frame = torch.randn(2, C, 1, 8, 8)
    same = losses(frame.expand(-1, -1, 3, -1, -1).contiguous(), _clip_targets(3))
    assert same['loss_dpsr_mask'].abs() < 2e-4 and same['loss_dpsr_feat'].abs() < 1e-8
    moving = losses(torch.randn(2, C, 3, 8, 8), _clip_targets(3))
    assert moving['loss_dpsr_mask'] > 1e-2 and moving['loss_dpsr_feat'] > 1e-3
    moving['loss_dpsr_mask'].backward()  # the current frame's prediction gets the gradient
    assert head.prompt_aggregator.out[0].weight.grad.abs().sum() > 0
    # a pair counts only where the object is visible on both frames: none is on frame 1
    gone = losses(torch.randn(2, C, 2, 8, 8), _clip_targets(2, present=[[True, False], [True, False]]))
    assert gone['loss_dpsr_mask'] == 0 and gone['loss_dpsr_feat'] == 0


def test_dpsr_needs_the_features_on_clips():
    head = _head(loss_dpsr=dict(type='DPSRLoss'))
    feats = torch.randn(2, C, 2, 8, 8)
    tokens = _tokens(head, feats)
    with pytest.raises(ValueError, match='DPSR on clips needs the neck features'):
        head.loss(head(feats, tokens), _clip_targets(2), torch.tensor([0, 1]), tokens)


def test_frame_embeddings_pool_the_feature_under_each_frame_mask():
    feat = torch.zeros(C, 2, 4, 4)
    feat[:, 0] = 1.0
    feat[:, 1, :2] = 3.0  # frame 1: top half 3, bottom half 0
    logits = torch.full((1, 2, 4, 4), -100.0)
    logits[0, :, :2] = 100.0  # the object covers the top half (8 pixels) on both frames
    emb = MODELS.get('RapSAMVideoHead').frame_embeddings(logits, feat)
    # sum over the mask / (area + 1), like the decoder stages' pooling
    torch.testing.assert_close(emb[0, 0], torch.full((C, ), 8 / 9))
    torch.testing.assert_close(emb[0, 1], torch.full((C, ), 24 / 9))
