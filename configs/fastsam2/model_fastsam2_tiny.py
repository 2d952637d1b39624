"""FastSAM2 tiny: ``rapsam_tiny_coco_panoptic`` with every FastSAM2 switch on.

Dual-path backbone (geometry branch + token fusion + token pruner), low-rank (Nystrom) decoder
attention, cross-prompt fusion, TaskRouter, streaming memory VOS, mask refiner and the DPSR loss.
Random init; for tests, the benchmark (``tools/benchmark/benchmark_modes.py``) and CPU demos.
"""
from mmengine.config import read_base

with read_base():
    from ..rapsam.rapsam_tiny_coco_panoptic import *  # noqa: F401,F403
    from .._base_.models.fastsam2_switches import loss_dpsr, memory, memory_reader, prompt_fusion, task_router

from seg.models.necks import MaskStateRefiner
from seg.models.utils import LowRankMHSA

# the entropy scorer attends to at most 64 keys: over all 2304 stride-16 tokens of a 1024x576 frame
# it would cost more than the pruning saves
model.backbone.update(
    geom_branch=dict(channels=16),
    token_fusion=dict(embed_dim=32, num_heads=4, direction='sem_queries_geom', level=2),
    token_pruner=dict(keep_ratio=0.5, score='entropy', refresh_period=4, num_score_keys=64))
model.panoptic_head.update(
    attention=dict(type=LowRankMHSA, rank=4, method='nystrom'),
    prompt_aggregator=dict(prompt_fusion, num_heads=4),
    memory_reader=memory_reader,
    loss_dpsr=loss_dpsr)
# the tiny head has 2 stages: interactive images run 1, the other modes both
model.update(
    task_router=dict(task_router, rules=dict(interactive=dict(num_stages=1), vos=dict(num_stages=2),
                                             panoptic=dict(num_stages=2))),
    mode='auto',
    memory=memory,
    mask_refiner=dict(type=MaskStateRefiner, feat_channels=32, hidden_channels=8, num_layers=2))
