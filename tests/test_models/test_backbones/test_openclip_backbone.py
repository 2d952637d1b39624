import copy
import socket

import open_clip
import pytest
import timm
import torch
from torch import nn

from seg.models.backbones import OpenCLIPBackbone
from seg.registry import MODELS
from tests.test_models.tiny_cases.backbones import CLIP_BACKBONES, FASTSAM2_OPTIONS

TINY = {'resnet': 'tiny_resnet_clip', 'convnext': 'tiny_convnext_clip'}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """open_clip / timm must never try to download anything: any connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f'network access attempted: {args}')

    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)


def build(family: str = 'resnet', seed: int = 0, **overrides) -> OpenCLIPBackbone:
    torch.manual_seed(seed)
    return MODELS.build(dict(copy.deepcopy(CLIP_BACKBONES[TINY[family]]), **overrides))


def reference_stages(clip: nn.Module, x: torch.Tensor) -> list:
    """The 4 stage outputs through open_clip's own intermediate-feature API."""
    feats = clip.visual.forward_intermediates(x, intermediates_only=True)['image_intermediates']
    return feats[-4:]


@pytest.mark.parametrize('family', ['resnet', 'convnext'])
def test_pyramid_strides_and_channels(family):
    model = build(family).eval()
    assert model.out_channels == CLIP_BACKBONES[TINY[family] + '_channels']
    x = torch.randn(2, 3, 64, 96)
    outs = model(x)
    assert len(outs) == 4
    for out, ch, stride in zip(outs, model.out_channels, (4, 8, 16, 32)):
        assert out.shape == (2, ch, 64 // stride, 96 // stride)


def test_out_indices_select_levels():
    model = build(out_indices=(1, 3)).eval()
    full = build().eval()
    x = torch.randn(1, 3, 64, 64)
    outs, ref = model(x), full(x)
    assert model.out_channels == [full.out_channels[1], full.out_channels[3]]
    assert torch.equal(outs[0], ref[1]) and torch.equal(outs[1], ref[3])
    # nothing deeper than needed runs: stride 16 only -> stage 4 is skipped
    assert build(out_indices=(2, )).num_stages == 3


@pytest.mark.parametrize('family', ['resnet', 'convnext'])
def test_frozen_tower_gets_no_grads_and_stays_in_eval(family):
    model = build(family, freeze=True, **FASTSAM2_OPTIONS)
    assert not model.visual.training and not model.text.training  # already at construction
    model.train()
    assert not any(p.requires_grad for p in model.visual.parameters())
    assert not any(p.requires_grad for p in model.text.parameters())
    assert not any(m.training for m in model.visual.modules())
    assert not any(m.training for m in model.text.modules())
    assert model.geom_branch.training and model.token_fusion.training
    bn_stats = {k: v.clone() for k, v in model.visual.state_dict().items() if 'running' in k}

    outs = model(torch.randn(2, 3, 64, 64))
    sum(o.sum() for o in outs).backward()
    assert all(p.grad is None for p in model.visual.parameters())
    # the geometry branch still trains
    assert all(p.grad is not None for p in model.geom_branch.parameters())
    assert all(torch.equal(v, model.visual.state_dict()[k]) for k, v in bn_stats.items())
    # levels that do not pass through the fusion carry no graph at all
    assert not outs[0].requires_grad and outs[2].requires_grad


def test_trainable_tower_trains_but_text_stays_frozen():
    model = build('resnet', freeze=False).train()
    assert model.visual.training and all(p.requires_grad for p in model.visual.parameters())
    assert not model.text.training and not any(p.requires_grad for p in model.text.parameters())
    bn = model.visual.stem[1]
    before = bn.running_mean.clone()
    sum(o.sum() for o in model(torch.randn(2, 3, 64, 64))).backward()
    assert not torch.equal(bn.running_mean, before)
    assert model.visual.stem[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.text.parameters())


def test_missing_pretrained_file_names_path_and_key(tmp_path):
    path = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError) as err:
        build(pretrained=path)
    assert path in str(err.value) and '`pretrained`' in str(err.value)


@pytest.mark.parametrize('family', ['resnet', 'convnext'])
def test_pretrained_checkpoint_reproduces_the_saved_model(family, tmp_path):
    cfg = CLIP_BACKBONES[TINY[family]]
    build(family)  # registers the tiny config with open_clip
    torch.manual_seed(123)
    clip = open_clip.create_model(cfg.model_name).eval()
    path = tmp_path / 'clip.pth'
    torch.save({'state_dict': clip.state_dict()}, path)

    model = build(family, seed=7, pretrained=str(path)).eval()
    fresh = build(family, seed=7).eval()
    x = torch.randn(2, 3, 64, 64)
    outs = model(x)
    with torch.no_grad():
        ref = reference_stages(clip, x)
    for out, r in zip(outs, ref):
        torch.testing.assert_close(out, r)
    assert not torch.allclose(fresh(x)[3], outs[3])
    texts = ['a photo of a dog', 'a red car']
    tokens = open_clip.get_tokenizer(cfg.model_name)(texts)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text(texts), clip.encode_text(tokens, normalize=True))
    # mmengine's init_weights (called by the runner) must not re-draw the loaded weights
    model.init_weights()
    torch.testing.assert_close(model(x)[3], outs[3])


def test_pretrained_without_matching_keys_is_an_error(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'backbone.conv.weight': torch.zeros(1)}, path)
    with pytest.raises(ValueError, match='no key'):
        build(pretrained=str(path))


@pytest.mark.parametrize('family', ['resnet', 'convnext'])
@pytest.mark.parametrize('pruner', [False, True])
def test_zero_init_fusion_reproduces_the_baseline_exactly(family, pruner):
    options = dict(FASTSAM2_OPTIONS)
    if not pruner:
        options.pop('token_pruner')
    full = build(family, seed=3, **options).eval()
    base = build(family, seed=3).eval()
    x = torch.randn(2, 3, 64, 64)
    outs, ref = full(x), base(x)
    for out, r in zip(outs, ref):
        assert torch.equal(out, r)
    # the comparison can fail: once the fusion output is non-zero the fused level differs
    nn.init.normal_(full.token_fusion.out_proj.weight)
    assert not torch.equal(full(x)[2], ref[2])


def test_pruner_changes_only_the_kept_tokens():
    full = build('convnext', seed=3, **FASTSAM2_OPTIONS).eval()
    base = build('convnext', seed=3).eval()
    nn.init.normal_(full.token_fusion.out_proj.weight)
    x = torch.randn(2, 3, 64, 64)
    outs, ref = full(x), base(x)
    changed = (outs[2] != ref[2]).any(dim=1).flatten(1)  # [B, N] tokens of the stride-16 level
    kept = torch.zeros_like(changed)
    kept.scatter_(1, full.token_pruner.last_keep_idx, True)
    assert kept.sum(1).tolist() == [8, 8]  # keep_ratio 0.5 of 4 x 4 tokens
    assert torch.equal(changed, kept)
    for i in (0, 1, 3):
        assert torch.equal(outs[i], ref[i])


def test_video_mode_reuses_scores_until_reset():
    model = build('convnext', token_pruner=dict(keep_ratio=0.5, refresh_period=4),
                  **{k: v for k, v in FASTSAM2_OPTIONS.items() if k != 'token_pruner'}).eval()
    frames = torch.randn(3, 1, 3, 64, 64)
    model.reset()
    scored = []
    for frame in frames:
        model(frame, video=True)
        scored.append(model.token_pruner.last_scored)
    assert scored == [True, False, False]
    model.reset()
    model(frames[0], video=True)
    assert model.token_pruner.last_scored


def test_fusion_at_stride_8_uses_the_stride_8_geometry():
    model = build('resnet', seed=1, geom_branch=dict(channels=16),
                  token_fusion=dict(level=1, embed_dim=16, num_heads=2)).eval()
    base = build('resnet', seed=1).eval()
    assert model.geom_branch.out_strides == [8] and model.geom_branch.down16 is None
    nn.init.normal_(model.token_fusion.out_proj.weight)
    x = torch.randn(1, 3, 64, 64)
    outs, ref = model(x), base(x)
    assert not torch.equal(outs[1], ref[1]) and torch.equal(outs[2], ref[2])


def test_distill_feats_stored_only_when_asked():
    model = build('resnet', **FASTSAM2_OPTIONS).eval()
    outs = model(torch.randn(2, 3, 64, 64))
    feats = model.distill_feats
    assert list(feats) == ['stage3', 'stage4', 'geom16', 'fused']
    assert feats['stage3'].shape == (2, 256, 4, 4) and feats['geom16'].shape == (2, 16, 4, 4)
    assert feats['stage4'] is outs[3] and feats['fused'] is outs[2]
    # the fusion is zero-initialised, so the fused level still equals the raw stage 3 output
    assert torch.equal(feats['fused'], feats['stage3'])
    # graph tensors are transient: copies of the module do not carry them
    assert copy.deepcopy(model).distill_feats == {}

    plain = build('resnet').eval()
    plain(torch.randn(1, 3, 64, 64))
    assert plain.distill_feats == {}
    with pytest.raises(ValueError, match="'fused'"):
        build('resnet', distill_keys=('fused', ))


def test_encode_text_shapes_and_normalisation():
    model = build('resnet').train()
    emb = model.encode_text(['a cat', 'a dog', 'a cat'])
    assert emb.shape == (3, model.text_embed_dim) == (3, 32)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    assert torch.equal(emb[0], emb[2]) and not torch.allclose(emb[0], emb[1])
    assert not emb.requires_grad
    raw = model.encode_text(['a cat'], normalize=False)
    torch.testing.assert_close(raw / raw.norm(), emb[:1])
    assert not torch.allclose(raw.norm(), torch.tensor(1.0))
    assert model.encode_text([]).shape == (0, 32)
    assert model.get_text_model() is model.text
    with pytest.raises(TypeError):
        model.encode_text('a cat')


def test_bad_inputs_and_configs_fail_clearly():
    model = build()
    with pytest.raises(ValueError, match='multiple of 32'):
        model(torch.randn(1, 3, 64, 80))
    with pytest.raises(ValueError, match=r'\[B, 3, H, W\]'):
        model(torch.randn(1, 4, 64, 64))
    with pytest.raises(ValueError, match='go together'):
        build(geom_branch=dict(channels=16))
    with pytest.raises(ValueError, match='token_pruner'):
        build(token_pruner=dict(keep_ratio=0.5))
    with pytest.raises(ValueError, match='level'):
        build(geom_branch=dict(channels=16), token_fusion=dict(level=3, embed_dim=16, num_heads=2))
    with pytest.raises(ValueError, match='schema'):
        OpenCLIPBackbone('hf-hub:timm/resnet50_clip.openai')
    with pytest.raises(ValueError, match='unknown open_clip model'):
        OpenCLIPBackbone('no_such_model')
    other = copy.deepcopy(CLIP_BACKBONES.tiny_resnet_clip.model_cfg)
    other['vision_cfg']['width'] = 32
    with pytest.raises(ValueError, match='different config'):
        OpenCLIPBackbone(CLIP_BACKBONES.tiny_resnet_clip.model_name, model_cfg=other)
    vit = dict(embed_dim=16, vision_cfg=dict(image_size=32, layers=1, width=64, patch_size=16),
               text_cfg=dict(context_length=8, vocab_size=49408, width=16, heads=2, layers=1))
    with pytest.raises(ValueError, match='4-stage conv pyramid'):
        OpenCLIPBackbone('fastsam2_test_tiny_vit', model_cfg=vit)


def test_real_variant_channels():
    # RN50 builds in about a second; ConvNeXt-L is checked on timm's meta-device skeleton.
    r50 = MODELS.build(dict(CLIP_BACKBONES.r50_clip, pretrained=None))
    assert r50.out_channels == CLIP_BACKBONES.r50_clip_channels
    assert r50.text_embed_dim == 1024 and r50.freeze
    cfg = open_clip.get_model_config(CLIP_BACKBONES.convnext_large_clip.model_name)
    with torch.device('meta'):
        trunk = timm.create_model(cfg['vision_cfg']['timm_model_name'])
    assert [f['num_chs'] for f in trunk.feature_info] == CLIP_BACKBONES.convnext_large_clip_channels
    assert CLIP_BACKBONES.convnext_large_clip.pretrained.startswith('data/pretrained/')


