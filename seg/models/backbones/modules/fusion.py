"""Dual-path token fusion: enhance the CLIP semantic level with the geometry branch's tokens."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmdet.models.layers import SinePositionalEncoding
from mmengine.model import constant_init
from torch import Tensor, nn

from seg.registry import MODELS

from .token_pruner import TokenPruner

DIRECTIONS = ('sem_queries_geom', 'geom_queries_sem', 'both')


class _CrossAttentionLayer(nn.Module):
    """Pre-norm cross-attention + FFN on [B, L, E] tokens; positional encodings go to q/k only."""

    def __init__(self, embed_dim: int, num_heads: int, ffn_ratio: float,
                 attention: Optional[dict]) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(embed_dim)
        self.norm_kv = nn.LayerNorm(embed_dim)
        if attention is None:
            self.attn = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        else:
            self.attn = MODELS.build(dict(attention, embed_dim=embed_dim, num_heads=num_heads))
        self.norm_ffn = nn.LayerNorm(embed_dim)
        hidden = int(embed_dim * ffn_ratio)
        self.ffn = nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))

    def forward(self, query: Tensor, query_pos: Tensor, memory: Tensor, memory_pos: Tensor) -> Tensor:
        q = self.norm_q(query)
        kv = self.norm_kv(memory)
        out = self.attn(q + query_pos, kv + memory_pos, kv)
        # nn.MultiheadAttention returns (output, weights); LowRankMHSA returns the output only
        x = query + (out[0] if isinstance(out, tuple) else out)
        return x + self.ffn(self.norm_ffn(x))


@MODELS.register_module()
class TokenFusionModule(nn.Module):
    """Cross-attention fusion of CLIP semantic tokens with geometry (edge/contour) tokens.

    Both maps are projected to ``embed_dim`` tokens with 2-D sine positional encodings on normalised
    coordinates (cell centres), so grids of different resolution line up. Depending on
    ``direction``:

    - ``'sem_queries_geom'``: every semantic token attends to the geometry tokens;
    - ``'geom_queries_sem'``: every geometry token attends to the semantic tokens and the result is
      resampled (bilinear) onto the semantic grid;
    - ``'both'``: the sum of the two.

    The fused embedding goes through ``out_proj`` (embed_dim -> sem_channels) and is ADDED to ``sem``.
    ``out_proj`` is zero-initialised, so at initialisation the module returns ``sem`` exactly and a
    backbone with fusion switched on reproduces the baseline.

    With a ``TokenPruner`` (``embed_dim`` = ``sem_channels``, it scores the raw semantic tokens), only
    the kept semantic positions receive the fusion update; the others come out unchanged. The
    semantic queries of the ``'sem_queries_geom'`` path are computed for the kept tokens only (the
    saving); the ``'geom_queries_sem'`` path runs at geometry resolution and is then read at the kept
    positions.

    Args:
        sem_channels: channels Cs of the semantic map (also of the output).
        geom_channels: channels Cg of the geometry map.
        embed_dim: fusion width E (even: half of it encodes y, half x).
        num_heads: attention heads.
        direction: one of ``'sem_queries_geom'``, ``'geom_queries_sem'``, ``'both'``.
        ffn_ratio: hidden width of the FFN after attention, as a multiple of E.
        attention: None for ``nn.MultiheadAttention``, or a MODELS config of a batch-first attention
            with the same call signature, e.g. ``dict(type='LowRankMHSA', rank=64,
            method='nystrom')``; ``embed_dim`` and ``num_heads`` are filled in.
    """

    def __init__(self,
                 sem_channels: int,
                 geom_channels: int,
                 embed_dim: int,
                 num_heads: int,
                 direction: str = 'sem_queries_geom',
                 ffn_ratio: float = 2.0,
                 attention: Optional[dict] = None) -> None:
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f'TokenFusionModule: direction must be one of {DIRECTIONS}, got '
                             f'{direction!r}')
        if embed_dim % 2:
            raise ValueError(f'TokenFusionModule: embed_dim must be even (sine positional '
                             f'encoding splits it between y and x), got {embed_dim}')
        self.sem_channels = sem_channels
        self.geom_channels = geom_channels
        self.direction = direction
        self.sem_in = nn.Linear(sem_channels, embed_dim)
        self.geom_in = nn.Linear(geom_channels, embed_dim)
        # offset -0.5 puts the encoding at cell centres, the same physical place on any grid size
        self.pos_enc = SinePositionalEncoding(embed_dim // 2, normalize=True, offset=-0.5)
        self.sem_queries_geom = (_CrossAttentionLayer(embed_dim, num_heads, ffn_ratio, attention)
                                 if direction in ('sem_queries_geom', 'both') else None)
        self.geom_queries_sem = (_CrossAttentionLayer(embed_dim, num_heads, ffn_ratio, attention)
                                 if direction in ('geom_queries_sem', 'both') else None)
        self.out_proj = nn.Linear(embed_dim, sem_channels)
        constant_init(self.out_proj, 0)

    def forward(self,
                sem: Tensor,
                geom: Tensor,
                pruner: Optional[TokenPruner] = None,
                video: bool = False) -> Tensor:
        """Fuse ``sem`` [B, Cs, H, W] with ``geom`` [B, Cg, H2, W2]; returns [B, Cs, H, W].

        ``pruner`` limits the update to its kept semantic tokens; ``video`` is passed on to it
        (reuse of the previous frame's scores, see ``TokenPruner``).
        """
        self._check_inputs(sem, geom, pruner)
        b, _, h, w = sem.shape
        sem_tok = sem.flatten(2).transpose(1, 2)  # [B, HW, Cs]
        sem_pos = self._pos(sem)
        geom_emb = self.geom_in(geom.flatten(2).transpose(1, 2))
        geom_pos = self._pos(geom)

        # per-semantic-position inputs of the update: positional encoding, plus the geometry
        # path's result already resampled onto the semantic grid
        aux = [sem_pos]
        if self.geom_queries_sem is not None:
            g = self.geom_queries_sem(geom_emb, geom_pos, self.sem_in(sem_tok), sem_pos)
            g = g.transpose(1, 2).reshape(b, -1, *geom.shape[-2:])
            g = F.interpolate(g, size=(h, w), mode='bilinear', align_corners=False)
            aux.append(g.flatten(2).transpose(1, 2))
        aux = torch.cat(aux, dim=-1)

        def update(tokens: Tensor, tok_aux: Tensor) -> Tensor:
            pos, geom_update = tok_aux.split(
                [sem_pos.shape[-1], tok_aux.shape[-1] - sem_pos.shape[-1]], dim=-1)
            fused = geom_update if self.geom_queries_sem is not None else 0
            if self.sem_queries_geom is not None:
                fused = fused + self.sem_queries_geom(self.sem_in(tokens), pos, geom_emb, geom_pos)
            return tokens + self.out_proj(fused)

        out = update(sem_tok, aux) if pruner is None else pruner(sem_tok, update, video=video, aux=aux)
        return out.transpose(1, 2).reshape(sem.shape)

    def _pos(self, feat: Tensor) -> Tensor:
        """Sine positional encoding of a [B, C, H, W] map as [B, HW, E] tokens."""
        mask = feat.new_zeros((feat.shape[0], *feat.shape[-2:]), dtype=torch.bool)
        return self.pos_enc(mask).to(feat.dtype).flatten(2).transpose(1, 2)

    def _check_inputs(self, sem: Tensor, geom: Tensor, pruner: Optional[TokenPruner]) -> None:
        if sem.dim() != 4 or sem.shape[1] != self.sem_channels:
            raise ValueError(f'TokenFusionModule: sem must be [B, {self.sem_channels}, H, W], got '
                             f'{tuple(sem.shape)}')
        if geom.dim() != 4 or geom.shape[1] != self.geom_channels or geom.shape[0] != sem.shape[0]:
            raise ValueError(f'TokenFusionModule: geom must be [{sem.shape[0]}, {self.geom_channels}, '
                             f'H2, W2], got {tuple(geom.shape)}')
        if pruner is not None and pruner.embed_dim != self.sem_channels:
            raise ValueError(f'TokenFusionModule: the pruner scores semantic tokens, so its embed_dim '
                             f'must be sem_channels={self.sem_channels}, got {pruner.embed_dim}')
