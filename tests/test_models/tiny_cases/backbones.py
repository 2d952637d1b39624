"""Tiny cases for the backbone modules (the tiny CLIP variants of configs/_base_/models/clip_backbones.py)."""
from pathlib import Path

import torch
from mmengine.config import Config

from . import TinyCase

CLIP_BACKBONES = Config.fromfile(
    Path(__file__).resolve().parents[3] / 'configs' / '_base_' / 'models' / 'clip_backbones.py')

# every FastSAM2 option on: geometry branch + token fusion (both directions) + pruner + distillation
FASTSAM2_OPTIONS = dict(
    geom_branch=dict(channels=16),
    token_fusion=dict(embed_dim=16, num_heads=2, direction='both'),
    token_pruner=dict(keep_ratio=0.5),
    distill_keys=('stage3', 'stage4', 'geom16', 'fused'))

_TEXT = {'text.': 'frozen text tower (encode_text only)'}


def _images() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64)


CASES = {
    'OpenCLIPBackbone': TinyCase(CLIP_BACKBONES.tiny_resnet_clip, lambda m: m(_images()), _TEXT),
    'OpenCLIPBackbone[fastsam2-convnext]': TinyCase(
        dict(CLIP_BACKBONES.tiny_convnext_clip, **FASTSAM2_OPTIONS),
        lambda m: (m(_images()), m.distill_feats), _TEXT),
    'OpenCLIPBackbone[fastsam2-resnet-frozen]': TinyCase(
        dict(CLIP_BACKBONES.tiny_resnet_clip, freeze=True, **FASTSAM2_OPTIONS),
        lambda m: m(_images()), _TEXT),
    'GeomBranch': TinyCase(dict(type='GeomBranch', in_channels=[8, 12], channels=16),
                           lambda m: m([torch.randn(2, 8, 16, 16), torch.randn(2, 12, 8, 8)])),
}
