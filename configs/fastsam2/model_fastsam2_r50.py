"""FastSAM2 at the R50 size: ``rapsam_r50_90k_coco_panoptic`` (OpenAI CLIP RN50, frozen) with every
FastSAM2 switch on (dual-path backbone with token pruning, low-rank attention, prompt fusion,
TaskRouter, streaming memory VOS, mask refiner, DPSR)."""
from mmengine.config import read_base

with read_base():
    from ..rapsam.rapsam_r50_90k_coco_panoptic import *  # noqa: F401,F403
    from .._base_.models.fastsam2_switches import loss_dpsr, memory, memory_reader, prompt_fusion, task_router

from seg.models.necks import MaskStateRefiner
from seg.models.utils import LowRankMHSA

# the fused level is stride 16 (1024 channels): 64x36 = 2304 tokens at 1024x576, half of them kept
model.backbone.update(
    geom_branch=dict(channels=64),
    token_fusion=dict(embed_dim=256, num_heads=8, direction='sem_queries_geom', level=2),
    token_pruner=dict(keep_ratio=0.5, score='entropy', refresh_period=4, num_score_keys=256))
model.panoptic_head.update(
    attention=dict(type=LowRankMHSA, rank=32, method='nystrom'),
    prompt_aggregator=dict(prompt_fusion, num_heads=8),
    memory_reader=memory_reader,
    loss_dpsr=loss_dpsr)
model.update(task_router=task_router, mode='auto', memory=memory,
             mask_refiner=dict(type=MaskStateRefiner, feat_channels=256, hidden_channels=16,
                               num_layers=3))
