"""SAM-style prompt encoder: clicks, boxes, mask prompts and texts become prompt tokens and queries."""
import math
from dataclasses import dataclass, fields
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import point_sample
from mmengine.model import BaseModule
from mmengine.structures import InstanceData

from seg.registry import MODELS
from seg.structures import POSITIVE


@dataclass
class PromptTokens:
    """Encoded prompts of a whole batch, one row per prompted object (``N`` rows in all).

    Every ``*_valid`` flag says which tokens exist: a missing modality is masked, never zero-filled.
    """
    point_embed: torch.Tensor   # [N, P, C]
    point_valid: torch.Tensor   # [N, P] bool
    box_embed: torch.Tensor     # [N, 2, C] (top-left, bottom-right corner tokens)
    box_valid: torch.Tensor     # [N] bool
    mask_embed: torch.Tensor    # [N, C]
    mask_valid: torch.Tensor    # [N] bool
    text_embed: torch.Tensor    # [N, Dt] (raw text-tower embedding; fusion projects it)
    text_valid: torch.Tensor    # [N] bool
    batch_index: torch.Tensor   # [N] long: the sample each row belongs to
    frame_index: torch.Tensor   # [N] long: the clip frame the prompt was given on
    mask_logits: torch.Tensor   # [N, h, w] mask prompt at feature resolution as logits (0 where none)
    # the raw clicks, for dense consumers (``PromptMaskRefiner``): the centre of the clicked pixel,
    # (x + 0.5, y + 0.5) / (W, H) of the padded input, so the click on pixel (x, y) lies in cell
    # (y // stride, x // stride) of any grid over the input
    point_coords: torch.Tensor  # [N, P, 2] in 0..1
    point_labels: torch.Tensor  # [N, P] long: 1 positive, 0 negative, -1 padding

    @property
    def num_prompts(self) -> int:
        return self.point_embed.shape[0]

    def select(self, rows: torch.Tensor) -> 'PromptTokens':
        """The given rows (indices or a bool mask over the N rows) of every field."""
        return PromptTokens(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})


@MODELS.register_module()
class SAMPromptEncoder(BaseModule):
    """Encode points / boxes / masks / texts into tokens of ``embed_dim`` channels.

    A point token is a random-Fourier encoding of its position (normalised by the padded input size,
    so it lines up with the feature map) plus a learned type embedding (positive / negative) plus a
    projection of the image feature under the click, which tells the query what the object looks like.
    Box corners get their own type embeddings. A mask prompt is encoded by the masked mean of the image
    feature; a text by the (frozen) CLIP text tower, projected to ``embed_dim`` by the consumer.

    Args:
        embed_dim: token channels (the head's feature channels).
        text_dim: dimension of the text-tower embeddings (0 disables text prompts).
        fourier_scale: std of the random Fourier frequencies.
    """
    NUM_TYPES = 4  # positive point, negative point, box top-left, box bottom-right

    def __init__(self, embed_dim: int = 256, text_dim: int = 0, fourier_scale: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if embed_dim % 2:
            raise ValueError(f'embed_dim must be even for sin/cos encoding, got {embed_dim}')
        self.embed_dim, self.text_dim = embed_dim, text_dim
        self.register_buffer('fourier', torch.randn(2, embed_dim // 2) * fourier_scale)
        self.type_embed = nn.Embedding(self.NUM_TYPES, embed_dim)
        self.point_feat_proj = nn.Linear(embed_dim, embed_dim)
        self.mask_feat_proj = nn.Linear(embed_dim, embed_dim)

    def encode_coords(self, xy: torch.Tensor, input_hw: tuple) -> torch.Tensor:
        """Fourier features of pixel coordinates ``[..., 2]`` (x, y) -> ``[..., embed_dim]``."""
        h, w = input_hw
        norm = xy / xy.new_tensor([w, h]) * 2 - 1
        proj = 2 * math.pi * norm @ self.fourier
        return torch.cat([proj.sin(), proj.cos()], dim=-1)

    def forward(self, prompts: List[Optional[InstanceData]], frame_ids: List[int],
                feats: torch.Tensor, input_hw: tuple,
                text_embeds: List[Optional[torch.Tensor]]) -> PromptTokens:
        """Encode the prompts of every sample of a batch.

        Args:
            prompts: per sample, its prompts (``seg.structures.prompts``) or None.
            frame_ids: per sample, the clip frame the prompts belong to.
            feats: image features ``[B, C, T, h, w]`` (stride of the neck).
            input_hw: padded input size (H, W) the coordinates live in.
            text_embeds: per sample, ``[N_i, text_dim]`` text embeddings (rows without text are
                ignored through ``prompts.texts == ''``) or None.
        """
        rows = [(b, p) for b, p in enumerate(prompts) if p is not None and len(p) > 0]
        device, c = feats.device, self.embed_dim
        if not rows:
            return self._empty(device, feats.shape[-2:])
        p_max = max(p.points.shape[1] for _, p in rows)
        pt_embed, pt_valid, box_embed, box_valid = [], [], [], []
        mask_embed, mask_valid, mask_logits, txt, txt_valid, bidx, fidx = [], [], [], [], [], [], []
        coords, labels = [], []
        for b, p in rows:
            n = p.points.shape[0]  # not len(): a traced size keeps ONNX export's object axis dynamic
            t = frame_ids[b]
            feat = feats[b, :, t]  # [C, h, w]
            # points: position + type + the feature under the click
            pts = F.pad(p.points.float(), (0, 0, 0, p_max - p.points.shape[1]))
            lab = F.pad(p.point_labels, (0, p_max - p.point_labels.shape[1]), value=-1)
            valid = lab >= 0
            types = torch.where(lab == POSITIVE, 0, 1)  # padding rows are masked below
            norm_xy = pts / pts.new_tensor([input_hw[1], input_hw[0]])
            under = point_sample(feat[None], norm_xy.reshape(1, -1, 2).clamp(0, 1),
                                 align_corners=False)[0].t().reshape(n, p_max, c)
            emb = self.encode_coords(pts, input_hw) + self.type_embed(types) + self.point_feat_proj(under)
            pt_embed.append(emb * valid[..., None])
            pt_valid.append(valid)
            coords.append((pts + 0.5) / pts.new_tensor([input_hw[1], input_hw[0]]) * valid[..., None])
            labels.append(lab.long())
            # boxes: two corner tokens
            corners = p.bboxes.float().reshape(n, 2, 2)
            corner_types = torch.tensor([2, 3], device=device).expand(n, 2)
            box_embed.append(self.encode_coords(corners, input_hw) + self.type_embed(corner_types))
            box_valid.append(p.box_valid.bool())
            # mask prompt: masked mean of the feature, and the mask itself as initial logits
            if 'masks' in p:
                m = F.interpolate(p.masks[:, None].float(), size=feat.shape[-2:], mode='bilinear',
                                  align_corners=False)[:, 0]
                area = m.flatten(1).sum(1)
                pooled = torch.einsum('nhw,chw->nc', m, feat) / area.clamp(min=1e-6)[:, None]
                mask_embed.append(self.mask_feat_proj(pooled))
                mask_valid.append(area > 0)
                mask_logits.append((m * 2 - 1) * 5.0 * (area > 0).float()[:, None, None])
            else:
                mask_embed.append(feat.new_zeros(n, c))
                mask_valid.append(torch.zeros(n, dtype=torch.bool, device=device))
                mask_logits.append(feat.new_zeros(n, *feat.shape[-2:]))
            te = text_embeds[b] if text_embeds else None
            if te is not None and 'texts' in p:
                txt.append(te.float())
                txt_valid.append(torch.tensor([bool(s) for s in p.texts], device=device))
            else:
                txt.append(feat.new_zeros(n, max(self.text_dim, 1)))
                txt_valid.append(torch.zeros(n, dtype=torch.bool, device=device))
            bidx.append(torch.full((n, ), b, dtype=torch.long, device=device))
            fidx.append(torch.full((n, ), t, dtype=torch.long, device=device))
        return PromptTokens(torch.cat(pt_embed), torch.cat(pt_valid), torch.cat(box_embed),
                            torch.cat(box_valid), torch.cat(mask_embed), torch.cat(mask_valid),
                            torch.cat(txt), torch.cat(txt_valid), torch.cat(bidx), torch.cat(fidx),
                            torch.cat(mask_logits), torch.cat(coords), torch.cat(labels))

    def _empty(self, device: torch.device, hw: tuple) -> PromptTokens:
        c, z = self.embed_dim, torch.zeros(0, dtype=torch.bool, device=device)
        return PromptTokens(torch.zeros(0, 0, c, device=device), torch.zeros(0, 0, dtype=torch.bool,
                            device=device), torch.zeros(0, 2, c, device=device), z,
                            torch.zeros(0, c, device=device), z,
                            torch.zeros(0, max(self.text_dim, 1), device=device), z,
                            torch.zeros(0, dtype=torch.long, device=device),
                            torch.zeros(0, dtype=torch.long, device=device),
                            torch.zeros(0, *hw, device=device), torch.zeros(0, 0, 2, device=device),
                            torch.zeros(0, 0, dtype=torch.long, device=device))
