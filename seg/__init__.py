"""FastSAM2: a real-time segment-anything plugin for MMEngine / MMDetection.

Importing ``seg`` registers every FastSAM2 module into mmdet's registries (see ``seg.registry``) and
makes mmengine checkpoint resume work under torch >= 2.6.
"""
from .engine.checkpoint_compat import register_mmengine_safe_globals

register_mmengine_safe_globals()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (registration side effects)

__version__ = '0.1.0'
