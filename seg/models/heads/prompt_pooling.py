"""RapSAM's prompt-to-query step: the mean of an object's prompt tokens."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from seg.registry import MODELS


@MODELS.register_module()
class PromptPooling(BaseModule):
    """One query per prompted object: the mean of its valid tokens (points, box corners, mask, text).

    Same call signature as ``PromptFusion`` (the FastSAM2 replacement), so the head switches between
    them by config. Missing modalities are left out of the mean, not averaged in as zeros.
    """

    def __init__(self, embed_dim: int, text_dim: int = 0, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.text_proj = nn.Linear(max(text_dim, 1), embed_dim)
        self.out = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.LayerNorm(embed_dim))

    def forward(self, point_embed: torch.Tensor, point_valid: torch.Tensor, box_embed: torch.Tensor,
                box_valid: torch.Tensor, mask_embed: torch.Tensor, mask_valid: torch.Tensor,
                text_embed: torch.Tensor, text_valid: torch.Tensor) -> torch.Tensor:
        tokens = torch.cat([point_embed, box_embed, mask_embed[:, None],
                            self.text_proj(text_embed)[:, None]], dim=1)
        valid = torch.cat([point_valid, box_valid[:, None].expand(-1, 2), mask_valid[:, None],
                           text_valid[:, None]], dim=1).float()
        if (valid.sum(1) == 0).any():
            raise ValueError('PromptPooling: a prompted object has no point, box, mask or text')
        pooled = (tokens * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)
        return self.out(pooled)
