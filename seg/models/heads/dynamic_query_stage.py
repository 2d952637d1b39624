"""One decoder stage of RapSAM: queries updated by dynamic kernels over the neck feature."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from seg.models.utils.feature_products import kernel_masks, masked_pool
from seg.registry import MODELS


def build_attention(cfg: Optional[dict], embed_dim: int, num_heads: int) -> nn.Module:
    """Full softmax attention by default, or any registered module with the ``(q, k, v,
    key_padding_mask) -> Tensor`` call (e.g. ``LowRankMHSA``)."""
    if cfg is None:
        return nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
    return MODELS.build(dict(embed_dim=embed_dim, num_heads=num_heads, **cfg))


def attend(attn: nn.Module, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Self-attention of ``x`` with either attention kind."""
    return attend_to(attn, x, x, key_padding_mask)


def attend_alone(attn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Self-attention of one-token sequences ``x [N, 1, C]``: the softmax over a single key is 1,
    so the output is the value's output projection. ``nn.MultiheadAttention`` computes that
    directly (no query / key projections, no softmax: ~10 small kernels less per stage, the same
    values and gradients); other attention kinds run as they are."""
    if not isinstance(attn, nn.MultiheadAttention) or not attn._qkv_same_embed_dim:
        return attend(attn, x, None)
    c = attn.embed_dim
    bias = None if attn.in_proj_bias is None else attn.in_proj_bias[2 * c:]
    return attn.out_proj(F.linear(x, attn.in_proj_weight[2 * c:], bias))


def attend_to(attn: nn.Module, query: torch.Tensor, memory: torch.Tensor,
              key_padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """``query`` attends to ``memory`` (keys = values); ``nn.MultiheadAttention`` returns
    ``(output, weights)``, a low-rank attention the output only."""
    out = attn(query, memory, memory, key_padding_mask=key_padding_mask)
    return out[0] if isinstance(out, tuple) else out


@MODELS.register_module()
class DynamicQueryStage(BaseModule):
    """Mask-pooled kernel update -> query self-attention -> FFN -> mask and class predictions.

    Each query pools the feature under its current (soft) mask over all frames of the clip, which is
    what makes a clip's frames share queries. A gated update mixes the pooled appearance into the query
    (kernel update), then queries exchange information by self-attention.

    Args:
        feat_channels: query / feature channels C.
        num_heads: attention heads.
        ffn_channels: hidden width of the FFN.
        cls_channels: width of the class embedding compared with the text embeddings.
        with_self_attn: False gives the light adaptor variant (no query interaction).
        attention: None for ``nn.MultiheadAttention`` or a config of a low-rank variant.
    """

    def __init__(self, feat_channels: int = 256, num_heads: int = 8, ffn_channels: int = 1024,
                 cls_channels: int = 256, with_self_attn: bool = True,
                 attention: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        c = feat_channels
        self.pool_proj = nn.Linear(c, c)
        self.gate = nn.Linear(c, 2 * c)
        self.query_gate = nn.Linear(c, 2 * c)
        self.update_norm = nn.LayerNorm(c)
        self.self_attn = build_attention(attention, c, num_heads) if with_self_attn else None
        self.attn_norm = nn.LayerNorm(c) if with_self_attn else None
        self.ffn = nn.Sequential(nn.Linear(c, ffn_channels), nn.GELU(), nn.Linear(ffn_channels, c))
        self.ffn_norm = nn.LayerNorm(c)
        self.mask_embed = nn.Sequential(nn.Linear(c, c), nn.ReLU(inplace=True), nn.Linear(c, c),
                                        nn.ReLU(inplace=True), nn.Linear(c, c))
        self.cls_embed = nn.Linear(c, cls_channels)

    def forward(self, query: torch.Tensor, feat: torch.Tensor, mask_logits: torch.Tensor,
                query_valid: Optional[torch.Tensor] = None, isolate: bool = False,
                predict_masks: bool = True, embed_classes: bool = True
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
        """
        Args:
            query: [B, Q, C]; feat: [B, C, T, h, w]; mask_logits: [B, Q, T, h, w] of the previous step.
            query_valid: [B, Q] bool, False for padding queries (ignored as attention keys).
            isolate: every query attends to itself only (a block-diagonal attention mask, run as
                one-token sequences so that any attention kind supports it): the queries do not
                interact, and adding or removing one leaves the others' outputs unchanged. The
                head isolates its prompt queries (one per prompted object) this way.
            predict_masks: False skips the mask prediction (a pass over the whole feature) for a
                caller that reads only the queries; ``mask_logits`` is then None.
            embed_classes: False skips the class embedding for a caller that reads no class;
                ``cls_embed`` is then None.
        Returns:
            (query [B, Q, C], mask_logits [B, Q, T, h, w], cls_embed [B, Q, cls_channels]).
        """
        weights = mask_logits.sigmoid()  # differentiable pooling also trains the initial masks
        pooled = masked_pool(weights, feat)
        pooled = pooled / (weights.flatten(2).sum(-1, keepdim=True) + 1.0)
        pooled = self.pool_proj(pooled)
        g_in, g_upd = self.gate(pooled).chunk(2, dim=-1)
        q_in, q_upd = self.query_gate(query).chunk(2, dim=-1)
        query = self.update_norm(torch.sigmoid(g_in * q_in) * query + torch.sigmoid(g_upd * q_upd) * pooled)
        if self.self_attn is not None and isolate:
            b, q, c = query.shape
            alone = attend_alone(self.self_attn, query.reshape(b * q, 1, c)).reshape(b, q, c)
            query = self.attn_norm(query + alone)
        elif self.self_attn is not None:
            pad = None
            if query_valid is not None:
                pad = ~query_valid
                # A sample with no valid query would mask every key (NaN softmax): let its padding
                # queries attend to themselves; their outputs are dropped anyway.
                pad = pad & query_valid.any(dim=1, keepdim=True)
            query = self.attn_norm(query + attend(self.self_attn, query, pad))
        query = self.ffn_norm(query + self.ffn(query))
        mask_logits = kernel_masks(self.mask_embed(query), feat) if predict_masks else None
        return query, mask_logits, self.cls_embed(query) if embed_classes else None


@MODELS.register_module()
class QueryAdaptor(DynamicQueryStage):
    """A task-specific light stage run after the shared stages (RapSAM's prompt / panoptic adaptor):
    one more kernel update + FFN with its own prediction heads, no query interaction by default."""

    def __init__(self, feat_channels: int = 256, num_heads: int = 8, ffn_channels: int = 1024,
                 cls_channels: int = 256, with_self_attn: bool = False,
                 attention: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(feat_channels, num_heads, ffn_channels, cls_channels, with_self_attn,
                         attention, init_cfg)
