"""Tiny cases for the stand-alone FastSAM2 modules (token pruner/fusion, low-rank attention,
TaskRouter, StreamingMemory, PromptFusion, DPSR loss, SAM2 distillation loss)."""
import torch
from torch import nn

from seg.models.backbones.modules import TokenPruner
from seg.models.utils.task_router import QUERY_SETS

from . import TinyCase


def _prune(m: TokenPruner) -> torch.Tensor:
    return m(torch.randn(2, 12, 8), nn.Linear(8, 8))


def _route(m) -> torch.Tensor:
    """The decisions of the three default modes as numbers (the router returns dataclasses)."""
    decisions = [m.route('interactive', {'point'}, 1), m.route('vos', {'mask'}, 4),
                 m.route('panoptic', set(), 1)]
    return torch.tensor([[d.num_stages, QUERY_SETS.index(d.query_set), d.use_memory, d.use_pruner]
                         for d in decisions])


def _stream(m) -> dict:
    m.add_object(1, 0, torch.randn(8), torch.rand(4, 4), text_embed=torch.randn(8))
    m.add_object(2, 1, torch.randn(8), torch.rand(4, 4))
    for t in range(2, 6):
        m.update(t, {1: torch.randn(8), 2: torch.randn(8)},
                 {1: torch.rand(4, 4), 2: torch.rand(4, 4)}, scores={1: 0.9, 2: 0.3})
    return m.fetch(5)


def _regional(m) -> torch.Tensor:
    """Two frames of a 128x128 video: a full computation, then one around a small mask."""
    encode = torch.nn.Conv2d(3, 4, 4, stride=4)
    frame = torch.randn(1, 3, 128, 128)
    feat, state = m(encode, frame, None, None)
    masks = torch.full((1, 32, 32), -1.0)
    masks[0, 10:14, 10:14] = 1.0
    return m(encode, frame, state, masks)[0]


def _fuse_prompts(m) -> torch.Tensor:
    return m(point_embed=torch.randn(3, 2, 16),
             point_valid=torch.tensor([[True, True], [True, False], [False, False]]),
             box_embed=torch.randn(3, 2, 16), box_valid=torch.tensor([True, False, False]),
             mask_embed=torch.randn(3, 16), mask_valid=torch.tensor([True, False, False]),
             text_embed=torch.randn(3, 12), text_valid=torch.tensor([False, True, True]))


def _attend(m) -> torch.Tensor:
    pad = torch.zeros(2, 20, dtype=torch.bool)
    pad[1, 15:] = True
    return m(torch.randn(2, 5, 16), torch.randn(2, 20, 16), torch.randn(2, 20, 16),
             key_padding_mask=pad)


def _distill(m) -> dict:
    """Both pairs (teacher map larger, then smaller than the student's): each W gets a gradient."""
    feats = {'stage2': torch.randn(2, 6, 8, 8, requires_grad=True),
             'neck': torch.randn(2, 4, 16, 16, requires_grad=True)}
    teacher = [torch.randn(2, 10, 12, 12), torch.randn(2, 12, 6, 6)]
    return {**m.feature_loss(feats, teacher),
            **m.mask_loss(torch.randn(3, 8, 8, requires_grad=True), torch.randn(3, 16, 16),
                          torch.tensor([True, False, True]))}


def _warp(m) -> torch.Tensor:
    keys = m.keys(torch.randn(2, 16, 6, 8), torch.randn(2, 3, 24, 32))
    return m(keys[0], keys[1], torch.rand(3, 6, 8))


CASES = {
    'LocalMaskWarp': TinyCase(dict(type='LocalMaskWarp', feat_channels=16, key_channels=4,
                                   radius=2), _warp),
    'TokenPruner': TinyCase(dict(type='TokenPruner', keep_ratio=0.5, embed_dim=8), _prune),
    'TokenPruner[saliency]': TinyCase(
        dict(type='TokenPruner', keep_ratio=0.3, embed_dim=8, score='saliency'), _prune),
    'TokenFusionModule': TinyCase(
        dict(type='TokenFusionModule', sem_channels=8, geom_channels=6, embed_dim=8, num_heads=2,
             direction='both', attention=dict(type='LowRankMHSA', rank=4, method='nystrom')),
        lambda m: m(torch.randn(2, 8, 4, 4), torch.randn(2, 6, 8, 8))),
    'TokenFusionModule[pruned]': TinyCase(
        dict(type='TokenFusionModule', sem_channels=8, geom_channels=6, embed_dim=8, num_heads=2),
        lambda m: m(torch.randn(2, 8, 4, 4), torch.randn(2, 6, 8, 8),
                    pruner=TokenPruner(0.5, embed_dim=8))),
    'LowRankMHSA': TinyCase(
        dict(type='LowRankMHSA', embed_dim=16, num_heads=2, rank=4, method='nystrom'), _attend),
    'LowRankMHSA[linformer]': TinyCase(
        dict(type='LowRankMHSA', embed_dim=16, num_heads=2, rank=4, method='linformer',
             max_seq_len=32), _attend),
    'TaskRouter': TinyCase(dict(type='TaskRouter'), _route),
    'RegionalFeatures': TinyCase(dict(type='RegionalFeatures', halo=8, align=8), _regional),
    'StreamingMemory': TinyCase(
        dict(type='StreamingMemory', long_capacity=2, short_capacity=2, key_frame_interval=2,
             text_sim_thr=-1.0), _stream),
    'PromptFusion': TinyCase(dict(type='PromptFusion', embed_dim=16, text_dim=12, num_heads=2),
                             _fuse_prompts),
    'DPSRLoss': TinyCase(
        dict(type='DPSRLoss', lambda_mask=1.0, lambda_feat=0.5),
        lambda m: m(torch.randn(3, 8, 8), torch.randn(3, 8, 8, requires_grad=True), torch.randn(3, 4),
                    torch.randn(3, 4, requires_grad=True), torch.tensor([True, False, True]))),
    'SAM2DistillLoss': TinyCase(
        dict(type='SAM2DistillLoss', temperature=2.0,
             pairs=[dict(student='stage2', teacher=0, student_channels=6, teacher_channels=10),
                    dict(student='neck', teacher=1, student_channels=4, teacher_channels=12,
                         weight=0.5)]),
        _distill),
}
