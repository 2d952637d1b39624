"""Read a tracked object's streaming memory into its decoder query (FastSAM2 VOS)."""
import math
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule, constant_init

from seg.registry import MODELS

from .dynamic_query_stage import attend_to, build_attention


@MODELS.register_module()
class MemoryCrossAttention(BaseModule):
    """``query [K, C]`` attends to the object's memory entries ``[K, M, D]`` -> ``[K, C]``.

    Each tracked object reads only its own entries (``StreamingMemory.fetch``: the prompted frames,
    key frames and the last frames), so the cost per frame is bounded by the memory capacity. An
    entry is projected from the memory space D (the head's class-embedding space) to C and tagged
    with its age, ``log(1 + frames since the entry)`` encoded by sines and a linear layer, so
    recent frames can be told from the prompted one. Pre-norm residual with a zero-initialised
    output projection: at initialisation the query is returned unchanged, i.e. a tracked object
    starts from its prompt query every frame.

    Args:
        embed_dim: query channels C.
        memory_dim: channels D of the memory embeddings.
        num_heads: attention heads.
        attention: None for ``nn.MultiheadAttention`` or a config of an attention with the same
            call (e.g. ``LowRankMHSA``).
        num_age_freqs: sine frequencies of the age encoding.
    """

    def __init__(self, embed_dim: int, memory_dim: int, num_heads: int = 8,
                 attention: Optional[dict] = None, num_age_freqs: int = 8,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.embed_dim, self.memory_dim = embed_dim, memory_dim
        self.memory_proj = nn.Linear(memory_dim, embed_dim)
        # geometric frequencies: resolve ages from one frame to hundreds on the log scale
        self.register_buffer('age_freqs', 2.0 ** torch.arange(num_age_freqs, dtype=torch.float) / 4,
                             persistent=False)
        self.age_proj = nn.Linear(2 * num_age_freqs, embed_dim)
        self.norm_query = nn.LayerNorm(embed_dim)
        self.norm_memory = nn.LayerNorm(embed_dim)
        self.attn = build_attention(attention, embed_dim, num_heads)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        constant_init(self.out_proj, 0)

    def init_weights(self) -> None:
        # whatever init_cfg draws, reading the memory must start as the identity
        super().init_weights()
        constant_init(self.out_proj, 0)

    def forward(self, query: torch.Tensor, memory: torch.Tensor, valid: torch.Tensor,
                age: torch.Tensor) -> torch.Tensor:
        """
        Args:
            query: [K, C] the objects' queries.
            memory: [K, M, D] their memory embeddings (padded to M).
            valid: [K, M] bool, False for padding; every object needs one valid entry.
            age: [K, M] frames between each entry and the current frame (>= 0).
        """
        k = query.shape[0]
        if query.dim() != 2 or query.shape[1] != self.embed_dim:
            raise ValueError(f'MemoryCrossAttention: query must be [K, {self.embed_dim}], got '
                             f'{tuple(query.shape)}')
        if memory.dim() != 3 or memory.shape[0] != k or memory.shape[2] != self.memory_dim:
            raise ValueError(f'MemoryCrossAttention: memory must be [{k}, M, {self.memory_dim}], got '
                             f'{tuple(memory.shape)}')
        if valid.shape != memory.shape[:2] or age.shape != memory.shape[:2]:
            raise ValueError(f'MemoryCrossAttention: valid and age must be {tuple(memory.shape[:2])}, '
                             f'got {tuple(valid.shape)} and {tuple(age.shape)}')
        if not valid.any(dim=1).all():
            raise ValueError('MemoryCrossAttention: an object has no valid memory entry')
        phase = torch.log1p(age.float().clamp(min=0))[..., None] * self.age_freqs * math.pi
        age_code = self.age_proj(torch.cat([phase.sin(), phase.cos()], dim=-1))
        mem = self.norm_memory(self.memory_proj(memory) + age_code)
        read = attend_to(self.attn, self.norm_query(query)[:, None], mem, ~valid)[:, 0]
        return query + self.out_proj(read)
