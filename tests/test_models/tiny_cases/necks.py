"""Tiny cases for the neck modules."""
import torch

from . import TinyCase

LEVELS = [(8, 4), (12, 8), (16, 16), (20, 32)]  # (channels, stride) of a tiny 4-level pyramid


def pyramid(b: int = 2, size: int = 64) -> list:
    return [torch.randn(b, c, size // s, size // s) for c, s in LEVELS]


CASES = {
    'YOSONeck': TinyCase(
        dict(type='YOSONeck', in_channels=[c for c, _ in LEVELS], agg_dim=16, hidden_dim=24,
             norm_cfg=dict(type='GN', num_groups=4)),
        lambda m: m(pyramid())),
    'YOSONeck[realtime]': TinyCase(
        dict(type='YOSONeck', in_channels=[c for c, _ in LEVELS], agg_dim=16, hidden_dim=24,
             norm_cfg=dict(type='GN', num_groups=4), conv_type='separable',
             fuse='sum1x1'),
        lambda m: m(pyramid())),
    'MaskStateRefiner': TinyCase(
        dict(type='MaskStateRefiner', feat_channels=24, hidden_channels=8, num_layers=2),
        lambda m: m(torch.randn(2, 24, 16, 16), torch.randn(2, 3, 16, 16))),
}
