# FastSAM2 stand-alone modules (low-rank attention, task routing, streaming memory, prompt fusion,
# regional video features, local mask warping, SAM2 distillation losses)
from .distill_utils import SAM2DistillLoss
from .local_mask_warp import LocalMaskWarp
from .low_rank_attention import LowRankMHSA
from .memory_adapter import MemoryEntry, MemoryReadout, StreamingMemory
from .prompt_fusion import PromptFusion
from .regional_features import RegionalFeatures, RegionState
from .task_router import DEFAULT_RULES, RouteDecision, TaskRouter

__all__ = ['LocalMaskWarp', 'LowRankMHSA', 'MemoryEntry', 'MemoryReadout', 'StreamingMemory', 'PromptFusion',
           'RegionalFeatures', 'RegionState',
           'DEFAULT_RULES', 'RouteDecision', 'TaskRouter', 'SAM2DistillLoss']
