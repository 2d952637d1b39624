"""The registries FastSAM2 registers into.

FastSAM2 registers every module into MMDetection's registries (scope ``mmdet``), so configs use
``default_scope='mmdet'`` and can mix mmdet's own modules (assigners, losses, transforms, metrics)
with ours by ``type=``. Import the registries from here, never from mmdet directly, so the choice
lives in one place.
"""
from mmdet.registry import (
                            DATA_SAMPLERS,
                            DATASETS,
                            HOOKS,
                            METRICS,
                            MODELS,
                            TASK_UTILS,
                            TRANSFORMS,
                            VISUALIZERS,
)

__all__ = ['DATASETS', 'DATA_SAMPLERS', 'HOOKS', 'METRICS', 'MODELS', 'TASK_UTILS', 'TRANSFORMS',
           'VISUALIZERS']
