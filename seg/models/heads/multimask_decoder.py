"""SAM-style multi-mask output: several candidate masks per prompt query for ambiguous prompts."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmdet.models.layers import MLP
from mmengine.model import BaseModule

from seg.models.utils.feature_products import kernel_masks
from seg.registry import MODELS


@MODELS.register_module()
class MultimaskDecoder(BaseModule):
    """``num_masks`` candidate masks per decoded prompt query (SAM's multimask output).

    A single click is ambiguous (a shirt, the person wearing it, the whole group): each candidate
    ``k`` has a learned output token ``e_k`` that turns the prompt query ``q`` into its own
    candidate query ``q_k = LN(q + MLP(q + e_k))``, whose kernel (an MLP of ``q_k``, as the decoder
    stages' ``mask_embed``) is applied to the prompted frame's neck feature. The head scores each
    candidate with its IoU head on ``q_k`` and trains them with SAM's ambiguity rule (the loss of
    the best candidate only, for single-click prompts; see ``RapSAMVideoHead.loss``). The tokens
    start random, so the candidates differ from the first step.

    Args:
        feat_channels: query / feature channels C (filled in by the head).
        num_masks: candidates per query (SAM: 3).
        num_layers: layers of the token MLP and of the kernel MLP.
    """

    def __init__(self, feat_channels: int = 256, num_masks: int = 3, num_layers: int = 2,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if num_masks < 1 or num_layers < 1:
            raise ValueError(f'MultimaskDecoder: num_masks and num_layers must be >= 1, got '
                             f'{num_masks} and {num_layers}')
        c = feat_channels
        self.feat_channels, self.num_masks = c, num_masks
        self.output_tokens = nn.Embedding(num_masks, c)
        self.token_mlp = MLP(c, c, c, num_layers)
        self.norm = nn.LayerNorm(c)
        self.mask_embed = MLP(c, c, c, num_layers)

    def forward(self, query: torch.Tensor, feat: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``query [N, C]`` and each query's frame feature ``feat [N, C, h, w]`` -> candidate
        queries ``[N, K, C]`` and candidate mask logits ``[N, K, h, w]``."""
        if query.dim() != 2 or query.shape[1] != self.feat_channels:
            raise ValueError(f'MultimaskDecoder expects queries [N, {self.feat_channels}], got '
                             f'{tuple(query.shape)}')
        if feat.dim() != 4 or feat.shape[:2] != query.shape:
            raise ValueError(f'MultimaskDecoder expects one frame feature [N, C, h, w] per query '
                             f'[N, C] = {tuple(query.shape)}, got {tuple(feat.shape)}')
        cand = query[:, None] + self.output_tokens.weight[None]
        cand = self.norm(query[:, None] + self.token_mlp(cand))
        kernels = self.mask_embed(cand)
        n, k = kernels.shape[:2]
        if n == 1 or feat.stride(0) == 0:  # one frame (a broadcast view): one pass for all rows
            masks = kernel_masks(kernels.reshape(1, n * k, -1), feat[:1, :, None])
            return cand, masks.view(n, k, *feat.shape[-2:])
        return cand, torch.einsum('nkc,nchw->nkhw', kernels, feat)
