"""FastSAM2 at the R50 size: ``rapsam_r50_90k_coco_panoptic`` (OpenAI CLIP RN50, frozen) with every
FastSAM2 switch on (dual-path backbone with token pruning and low-rank fusion attention, real-time
pixel decoder, prompt fusion, TaskRouter, streaming memory VOS, mask refiners, DPSR)."""
from mmengine.config import read_base

with read_base():
    from ..rapsam.rapsam_r50_90k_coco_panoptic import *  # noqa: F401,F403
    from .._base_.models.fastsam2_switches import (backbone_switches, head_switches,
                                                   model_switches, neck_switches, token_fusion,
                                                   token_pruner)

# the fused level is stride 16 (1024 channels): 64x36 = 2304 tokens at 1024x576, half of them kept
model.backbone.update(geom_branch=dict(channels=64), token_fusion=token_fusion,
                      token_pruner=token_pruner)
model.backbone.update(backbone_switches)
model.neck.update(neck_switches)
model.panoptic_head.update(head_switches)
model.update(model_switches)
