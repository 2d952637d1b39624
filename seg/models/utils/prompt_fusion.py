"""Cross-prompt fusion: one query per object from its point, box, mask and text prompts."""
from typing import Callable, List, Optional

import torch
from torch import Tensor, nn

from seg.registry import MODELS

# modality rows of the learned type embedding
_POINT, _BOX, _MASK, _TEXT = range(4)


@MODELS.register_module()
class PromptFusion(nn.Module):
    """Fuse the prompt embeddings of each object into one query with a transformer encoder.

    The sequence of an object is ``[fusion token, points (P), box corners (2), mask (1), text (1)]``;
    each prompt embedding gets its modality's learned type embedding added, the text embedding is
    first projected from ``text_dim`` (e.g. the CLIP text tower) to ``embed_dim``. Missing prompts are
    excluded by the attention padding mask (never fed as zeros), and the output is the fusion token.
    Points form a set: they share one type embedding and get no positional encoding, so the output
    does not depend on their order (box corners keep whatever corner encoding the prompt encoder
    gave them).

    Args:
        embed_dim: prompt/query width C.
        text_dim: width Dt of the text embeddings.
        num_heads: attention heads.
        num_layers: transformer encoder layers.
        ffn_dim: FFN hidden width (default 4 * C).
    """

    def __init__(self,
                 embed_dim: int,
                 text_dim: int,
                 num_heads: int,
                 num_layers: int = 1,
                 ffn_dim: Optional[int] = None) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.text_dim = text_dim
        self.text_proj = nn.Linear(text_dim, embed_dim)
        self.type_embed = nn.Embedding(4, embed_dim)
        self.fusion_token = nn.Parameter(torch.zeros(embed_dim))
        nn.init.normal_(self.fusion_token, std=0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(embed_dim, num_heads, ffn_dim or 4 * embed_dim, dropout=0.0,
                                       batch_first=True, norm_first=True)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self,
                point_embed: Optional[Tensor] = None,
                point_valid: Optional[Tensor] = None,
                box_embed: Optional[Tensor] = None,
                box_valid: Optional[Tensor] = None,
                mask_embed: Optional[Tensor] = None,
                mask_valid: Optional[Tensor] = None,
                text_embed: Optional[Tensor] = None,
                text_valid: Optional[Tensor] = None) -> Tensor:
        """Fuse the prompts of N objects into [N, C] queries.

        Args:
            point_embed: [N, P, C] point embeddings; point_valid [N, P] bool (False = padding).
            box_embed: [N, 2, C] box corner embeddings; box_valid [N] bool.
            mask_embed: [N, C] pooled mask-prompt embedding; mask_valid [N] bool.
            text_embed: [N, Dt] text embeddings; text_valid [N] bool.

        A modality passed as None is absent for every object; a validity tensor left None means
        all present. Every object needs at least one valid prompt.
        """
        # per modality: its tokens (built only if the modality is kept, below) and validity
        builders: List[Callable[[], Tensor]] = []
        valid: List[Tensor] = []
        n = self._num_objects(point_embed, box_embed, mask_embed, text_embed)
        if point_embed is not None:
            self._check('point_embed', point_embed, (n, None, self.embed_dim))
            builders.append(lambda: point_embed + self.type_embed.weight[_POINT])
            valid.append(self._valid('point_valid', point_valid, point_embed.shape[:2], point_embed))
        if box_embed is not None:
            self._check('box_embed', box_embed, (n, 2, self.embed_dim))
            builders.append(lambda: box_embed + self.type_embed.weight[_BOX])
            valid.append(self._valid('box_valid', box_valid, (n, ), box_embed)[:, None].expand(n, 2))
        if mask_embed is not None:
            self._check('mask_embed', mask_embed, (n, self.embed_dim))
            builders.append(lambda: (mask_embed + self.type_embed.weight[_MASK])[:, None])
            valid.append(self._valid('mask_valid', mask_valid, (n, ), mask_embed)[:, None])
        if text_embed is not None:
            self._check('text_embed', text_embed, (n, self.text_dim))
            builders.append(lambda: (self.text_proj(text_embed) + self.type_embed.weight[_TEXT])[:, None])
            valid.append(self._valid('text_valid', text_valid, (n, ), text_embed)[:, None])
        valid_all = torch.cat(valid, dim=1)
        # one host sync: per object whether it has a prompt, per modality whether any / every
        # object has it
        flags = torch.cat([valid_all.any(dim=1), torch.stack([v.any() for v in valid]),
                           torch.stack([v.all() for v in valid])]).tolist()
        empty = [i for i, p in enumerate(flags[:n]) if not p]
        if empty:
            raise ValueError(f'PromptFusion: object(s) {empty} have no valid prompt')
        some, every = flags[n:n + len(valid)], flags[n + len(valid):]
        every_token = self.training or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        # At inference a modality no object has is left out of the sequence instead of masked
        # (its tokens are not even built), and the padding mask too when nothing is padded (a
        # click alone: 2 tokens instead of 6, unmasked): the same output, as a padded token is
        # never attended to. Training keeps every token, so that every parameter is in every
        # step's graph (DDP expects it; AdamW then decays them all alike), and so does an
        # exported graph, since its inputs may have what the example had not.
        kept = range(len(valid)) if every_token else [k for k in range(len(valid)) if some[k]]
        fusion = self.fusion_token.expand(n, 1, -1)
        x = torch.cat([fusion, *(builders[k]() for k in kept)], dim=1)
        padding = None
        if every_token or not all(every[k] for k in kept):
            padding = torch.cat([valid_all.new_zeros(n, 1), *(~valid[k] for k in kept)], dim=1)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=padding)
        return self.norm(x[:, 0])

    @staticmethod
    def _num_objects(*embeds: Optional[Tensor]) -> int:
        # sizes compared one by one (not as a set): under ONNX tracing they are tensors, and the
        # returned size must stay traced for the object axis to stay dynamic
        counts = [e.shape[0] for e in embeds if e is not None]
        if not counts:
            raise ValueError('PromptFusion: give at least one of point, box, mask or text embeddings')
        if any(c != counts[0] for c in counts[1:]):
            raise ValueError(f'PromptFusion: prompt embeddings disagree on the number of objects: '
                             f'{[int(c) for c in counts]}')
        return counts[0]

    @staticmethod
    def _check(name: str, x: Tensor, shape: tuple) -> None:
        if x.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
            expected = ', '.join('*' if s is None else str(s) for s in shape)
            raise ValueError(f'PromptFusion: {name} must be [{expected}], got {tuple(x.shape)}')

    @staticmethod
    def _valid(name: str, valid: Optional[Tensor], shape: tuple, like: Tensor) -> Tensor:
        if valid is None:
            return torch.ones(shape, dtype=torch.bool, device=like.device)
        if valid.dtype != torch.bool or tuple(valid.shape) != tuple(shape):
            raise ValueError(f'PromptFusion: {name} must be bool {tuple(shape)}, got {valid.dtype} '
                             f'{tuple(valid.shape)}')
        return valid
