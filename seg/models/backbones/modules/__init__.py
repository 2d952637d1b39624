from .fusion import TokenFusionModule
from .token_pruner import TokenPruner

__all__ = ['TokenFusionModule', 'TokenPruner']
