import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import DepthwiseSeparableConvModule
from torchvision.ops import DeformConv2d

from seg.models.necks import MaskStateRefiner, YOSONeck
from seg.models.necks.ramsam_neck import coord_channels
from tests.test_models.tiny_cases.necks import LEVELS, pyramid

GN4 = dict(type='GN', num_groups=4)


def tiny_neck(**kwargs) -> YOSONeck:
    return YOSONeck([c for c, _ in LEVELS], agg_dim=16, hidden_dim=24, norm_cfg=GN4, **kwargs)


def test_neck_fuses_all_levels_into_one_stride_4_map():
    neck = tiny_neck()
    out = neck(pyramid(b=2, size=64))
    assert out.shape == (2, 24, 16, 16)
    # every level contributes: perturbing the coarsest one changes the output
    feats = pyramid(b=1)
    base = neck(feats)
    feats[3] = feats[3] + 1.0
    assert not torch.allclose(neck(feats), base)
    # any number of levels >= 2
    three = YOSONeck([8, 12, 16], agg_dim=16, hidden_dim=24, norm_cfg=GN4)
    assert three(pyramid(b=1)[:3]).shape == (1, 24, 16, 16)


def test_deformable_convs_are_torchvision_and_start_as_plain_convs():
    neck = tiny_neck()
    block = neck.topdown_convs[0]
    assert isinstance(block.conv, DeformConv2d)
    x = torch.randn(1, 16, 8, 8)
    offset = block.offset(x)
    assert offset.shape == (1, 18, 8, 8) and not offset.any()
    torch.testing.assert_close(block.conv(x, offset), F.conv2d(x, block.conv.weight, padding=1))


def test_realtime_settings_skip_the_costly_convs_and_fuse_by_projected_sums():
    neck = tiny_neck(conv_type='separable', finest_conv=False, fuse='sum1x1').eval()
    assert isinstance(neck.topdown_convs[0], torch.nn.Identity)
    assert all(isinstance(c, DepthwiseSeparableConvModule) for c in neck.topdown_convs[1:])
    assert not any(isinstance(m, DeformConv2d) for m in neck.modules())
    feats = pyramid(b=1)
    # 'sum1x1' == a 1x1 conv over the concatenated upsampled levels + coordinates (what it
    # replaces the 3x3 of), because a 1x1 conv commutes with bilinear upsampling
    outs, top = [None] * 4, None
    for i in range(3, -1, -1):
        x = neck.lateral_convs[i](feats[i])
        if top is not None:
            x = x + F.interpolate(top, size=x.shape[-2:], mode='bilinear', align_corners=False)
        top = outs[i] = neck.topdown_convs[i](x)
    cat = torch.cat([outs[0]] + [F.interpolate(o, size=(16, 16), mode='bilinear',
                                               align_corners=False) for o in outs[1:]]
                    + [coord_channels(outs[0])], dim=1)
    weight = torch.cat([p.weight for p in neck.level_projs] + [neck.coord_proj.weight], dim=1)
    fused = F.conv2d(cat, weight)
    expected = neck.out_conv(neck.fuse_act(neck.fuse_norm(fused)))
    torch.testing.assert_close(neck(feats), expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="fuse must be one of"):
        tiny_neck(fuse='sum3x3')
    with pytest.raises(ValueError, match="conv_type must be one of"):
        tiny_neck(conv_type='dilated')


def test_realtime_settings_cut_the_neck_flops_sixfold_at_r50_widths():
    from seg.utils.profiling import gflops
    r50 = [(256, 4), (512, 8), (1024, 16), (2048, 32)]
    feats = [torch.randn(1, c, 576 // s, 1024 // s) for c, s in r50]
    kw = dict(in_channels=[c for c, _ in r50], agg_dim=128, hidden_dim=256)
    # the deformable kernel is not counted by the FLOP counter: compare without it
    full_neck = YOSONeck(**kw, conv_type='plain').eval()
    fast_neck = YOSONeck(**kw, conv_type='separable', fuse='sum1x1').eval()
    with torch.no_grad():
        full, fast = gflops(lambda: full_neck(feats)), gflops(lambda: fast_neck(feats))
    assert fast < full / 6, (full, fast)


def test_coordinate_channels():
    coords = coord_channels(torch.zeros(2, 5, 3, 4))
    assert coords.shape == (2, 2, 3, 4)
    assert coords[0, 0, 0].tolist() == pytest.approx([-1, -1 / 3, 1 / 3, 1])  # x along width
    assert coords[0, 1, :, 0].tolist() == [-1, 0, 1]  # y along height
    # with spatially constant inputs, only the coordinates make interior outputs differ
    neck = tiny_neck().eval()
    out = neck([torch.ones(1, c, 64 // s, 64 // s) for c, s in LEVELS])
    assert not torch.allclose(out[..., 4:12, 6], out[..., 4:12, 9])


def test_neck_rejects_wrong_levels_and_channels():
    neck = tiny_neck()
    feats = pyramid(b=1)
    with pytest.raises(ValueError, match='got 3 feature levels, built for 4'):
        neck(feats[:3])
    feats[2] = torch.randn(1, 17, 4, 4)
    with pytest.raises(ValueError, match=r'level 2 must be \[1, 16, H, W\]'):
        neck(feats)
    with pytest.raises(ValueError, match='at least 2 levels'):
        YOSONeck([8])


def test_refiner_is_the_identity_at_init():
    refiner = MaskStateRefiner(24, hidden_channels=8, num_layers=3)
    feat, logits = torch.randn(2, 24, 16, 16), torch.randn(2, 5, 16, 16)
    assert torch.equal(refiner(feat, logits), logits)
    # a different mask resolution: the feature is resized to the masks
    assert torch.equal(refiner(feat, logits[..., :8, :8]), logits[..., :8, :8])
    # whatever init_cfg draws, init_weights keeps the identity
    refiner = MaskStateRefiner(24, init_cfg=dict(type='Kaiming', layer='Conv2d'))
    refiner.init_weights()
    assert torch.equal(refiner(feat, logits), logits)
    empty = torch.zeros(2, 0, 16, 16)
    assert refiner(feat, empty).shape == (2, 0, 16, 16)


def test_refiner_learns_a_boundary_correction():
    # the current masks are the true squares shifted by 2 px; the feature shows the true squares
    truth = torch.zeros(1, 2, 24, 24)
    truth[0, 0, 6:16, 6:16] = 1
    truth[0, 1, 10:20, 4:12] = 1
    logits = 4 * (2 * torch.roll(truth, shifts=(2, 2), dims=(2, 3)) - 1)
    feat = torch.cat([truth.sum(1, keepdim=True), 0.1 * torch.randn(1, 7, 24, 24)], dim=1)
    refiner = MaskStateRefiner(8, hidden_channels=16, num_layers=3)
    optim = torch.optim.Adam(refiner.parameters(), lr=1e-2)

    def loss() -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(refiner(feat, logits), truth)

    start = loss().item()
    for _ in range(100):
        optim.zero_grad()
        value = loss()
        value.backward()
        optim.step()
    assert loss().item() < 0.1 * start  # about 0.49 -> 1e-4 in practice


def test_refiner_rejects_bad_shapes():
    refiner = MaskStateRefiner(24)
    with pytest.raises(ValueError, match=r'feat must be \[B, 24, H, W\]'):
        refiner(torch.randn(2, 23, 8, 8), torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match='mask_logits must be'):
        refiner(torch.randn(2, 24, 8, 8), torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match='num_layers'):
        MaskStateRefiner(24, num_layers=0)


def test_nan_input_raises_instead_of_crashing_deform_conv():
    """torchvision's CPU deform_conv2d segfaults on NaN offsets: the block raises first."""
    neck = tiny_neck().eval()
    feats = pyramid(b=1)
    feats[0][0, 0, 0, 0] = float('nan')
    with torch.no_grad(), pytest.raises(ValueError, match='NaN in the deformable-conv offsets'):
        neck(feats)
