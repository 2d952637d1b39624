"""Runtime shared by every FastSAM2 / RapSAM config (mmengine new-style config)."""
from mmdet.visualization import DetLocalVisualizer
from mmengine.hooks import DistSamplerSeedHook, IterTimerHook, LoggerHook, ParamSchedulerHook
from mmengine.runner import LogProcessor
from mmengine.visualization import LocalVisBackend

from seg.engine.hooks import (DivergenceGuardHook, ExactResumeHook, SaveFirstCheckpointHook,
                              SegVisualizationHook)

default_scope = 'mmdet'  # FastSAM2 registers into mmdet's registries (see seg/registry.py)
custom_imports = dict(imports=['seg'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type=IterTimerHook),
    logger=dict(type=LoggerHook, interval=50),
    param_scheduler=dict(type=ParamSchedulerHook),
    # atomic writes: a crash mid-save never leaves a truncated checkpoint for --resume to pick up
    # superseded checkpoints are deleted after the new one is written, not before
    checkpoint=dict(type=SaveFirstCheckpointHook, interval=5000, by_epoch=False, max_keep_ckpts=3,
                    backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type=DistSamplerSeedHook),
    # tools/test.py --show / --show-dir turn its drawing on
    visualization=dict(type=SegVisualizationHook),
    # skip NaN / inf steps, stop a diverging run with a message, never save non-finite weights
    divergence_guard=dict(type=DivergenceGuardHook, max_consecutive_skips=3, explosion_ratio=1e4),
    # checkpoints carry the random state and the data position: a resume is exact
    exact_resume=dict(type=ExactResumeHook))

env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type=LocalVisBackend)]
visualizer = dict(type=DetLocalVisualizer, vis_backends=vis_backends, name='visualizer')
log_processor = dict(type=LogProcessor, window_size=50, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
