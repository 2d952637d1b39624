"""LocalMaskWarp: follows a moving pattern, stays a convex combination of the previous mask within
the window, and learns through its keys."""
import pytest
import torch
import torch.nn.functional as F

from seg.models.utils import LocalMaskWarp


def _textured(h: int = 48, w: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.randn(1, 3, h // 4, w // 4, generator=g), size=(h, w),
                         mode='bilinear', align_corners=False)


def test_follows_an_image_shift_that_copying_misses():
    warp = LocalMaskWarp(feat_channels=8, radius=3).eval()
    with torch.no_grad():
        warp.feat_weight.zero_()  # the image patches alone: a random feature would add noise
    image = _textured(96, 128)
    shifted = torch.roll(image, shifts=(8, 8), dims=(-2, -1))  # 2 cells at stride 4
    feat = torch.zeros(1, 8, 24, 32)
    mask = torch.zeros(1, 24, 32)
    mask[0, 8:14, 10:18] = 1
    with torch.no_grad():
        moved = warp(warp.keys(feat, image)[0], warp.keys(feat, shifted)[0], mask)
    target = torch.roll(mask, shifts=(2, 2), dims=(-2, -1))

    def iou(a, b):
        return ((a > 0.5) & (b > 0.5)).sum() / ((a > 0.5) | (b > 0.5)).sum()

    assert iou(moved, target) > 0.8 > iou(mask, target)


def test_output_is_a_convex_combination_within_the_window():
    warp = LocalMaskWarp(feat_channels=8, radius=1)
    keys = warp.keys(torch.randn(2, 8, 10, 12), torch.randn(2, 3, 40, 48))
    probs = torch.zeros(2, 10, 12)
    probs[0, 5, 6] = 1  # a single cell: it can only spread to its 3x3 neighbourhood
    probs[1] = 0.7  # a constant stays constant
    out = warp(keys[0], keys[1], probs)
    assert out.min() >= 0 and out.max() <= 1
    window = torch.zeros(10, 12, dtype=torch.bool)
    window[4:7, 5:8] = True
    assert out[0][window].sum() > 0 and (out[0][~window] == 0).all()
    torch.testing.assert_close(out[1], torch.full((10, 12), 0.7))


def test_keys_and_temperature_get_gradients():
    warp = LocalMaskWarp(feat_channels=8, key_channels=4, radius=2)
    keys = warp.keys(torch.randn(2, 8, 6, 6), torch.randn(2, 3, 24, 24))
    warp(keys[0], keys[1], torch.rand(2, 6, 6)).pow(2).sum().backward()
    for name, p in warp.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_rejects_mismatched_grids():
    warp = LocalMaskWarp(feat_channels=8)
    keys = warp.keys(torch.randn(1, 8, 6, 6), torch.randn(1, 3, 24, 24))[0]
    with pytest.raises(ValueError, match='same grid'):
        warp(keys, keys, torch.rand(1, 5, 6))
    with pytest.raises(ValueError, match=r'\[N, 8, h, w\]'):
        warp.keys(torch.randn(1, 4, 6, 6), torch.randn(1, 3, 24, 24))
    with pytest.raises(ValueError, match='radius'):
        LocalMaskWarp(feat_channels=8, radius=0)
