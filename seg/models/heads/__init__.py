from .dynamic_query_stage import DynamicQueryStage, QueryAdaptor
from .iou_head import QueryIoUHead
from .memory_cross_attention import MemoryCrossAttention
from .multimask_decoder import MultimaskDecoder
from .prompt_mask_refiner import PromptMaskRefiner
from .prompt_pooling import PromptPooling
from .rapsam_head import HeadOutput, RapSAMVideoHead, StepOutput
from .sam_prompt_encoder import PromptTokens, SAMPromptEncoder
from .selective_fusion_head import SelectiveFusionHead

__all__ = ['DynamicQueryStage', 'QueryAdaptor', 'QueryIoUHead', 'MultimaskDecoder', 'MemoryCrossAttention',
           'PromptMaskRefiner', 'PromptPooling', 'HeadOutput', 'RapSAMVideoHead', 'StepOutput',
           'PromptTokens', 'SAMPromptEncoder',
           'SelectiveFusionHead']
