"""FastSAM2 tiny: ``rapsam_tiny_coco_panoptic`` with every FastSAM2 switch on.

Dual-path backbone (geometry branch + token fusion with low-rank (Nystrom) attention + token
pruner), real-time pixel decoder, cross-prompt fusion, TaskRouter, streaming memory VOS, mask
refiners and the DPSR loss.
Random init; for tests, the benchmark (``tools/benchmark/benchmark_modes.py``) and CPU demos.
"""
from mmengine.config import read_base

with read_base():
    from ..rapsam.rapsam_tiny_coco_panoptic import *  # noqa: F401,F403
    from .._base_.models.fastsam2_switches import (backbone_switches, head_switches,
                                                   model_switches, neck_switches, token_fusion,
                                                   token_pruner)

# the entropy scorer attends to at most 64 keys: over all 2304 stride-16 tokens of a 1024x576 frame
# it would cost more than the pruning saves
model.backbone.update(geom_branch=dict(channels=16),
                      token_fusion=dict(token_fusion, embed_dim=32, num_heads=4,
                                        attention=dict(token_fusion['attention'], rank=8)),
                      token_pruner=dict(token_pruner, num_score_keys=64))
model.backbone.update(backbone_switches)
model.neck.update(neck_switches)
model.panoptic_head.update(head_switches)
model.panoptic_head.prompt_aggregator.num_heads = 4
model.panoptic_head.prompt_refiner.update(hidden_channels=8, num_layers=3)
model.update(model_switches)
# the tiny head has 2 stages: interactive images run 1, the other modes both
model.task_router.rules = dict(interactive=dict(num_stages=1), vos=dict(num_stages=2),
                               panoptic=dict(num_stages=2))
model.mask_refiner.update(feat_channels=32, hidden_channels=8, num_layers=2)
