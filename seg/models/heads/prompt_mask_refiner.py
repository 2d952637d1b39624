"""Dense correction of prompt masks from the clicks and the previous mask (RITM / SAM style)."""
from dataclasses import dataclass, fields
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer
from mmengine.model import BaseModule
from mmengine.model.weight_init import constant_init
from torch import Tensor

from seg.registry import MODELS
from seg.structures import NEGATIVE, PADDING, POSITIVE

from .sam_prompt_encoder import PromptTokens


@dataclass
class DensePrompts:
    """The raw per-row prompts ``PromptMaskRefiner`` reads (``N`` rows): where each row is refined
    and its mask prompt and clicks, in ``PromptTokens``' conventions. A clip decode takes them from
    its prompt tokens; the streaming tracker feeds each tracked object's propagated mask back as
    its mask prompt (``propagated`` rows)."""
    batch_index: Tensor   # [N] long: the sample of the row
    frame_index: Tensor   # [N] long: the frame of that sample the row is refined on
    mask_logits: Tensor   # [N, h, w] mask prompt logits (ignored where mask_valid is False)
    mask_valid: Tensor    # [N] bool
    point_coords: Tensor  # [N, P, 2] in 0..1 of the padded input
    point_labels: Tensor  # [N, P] long: POSITIVE / NEGATIVE / PADDING
    propagated: Optional[Tensor] = None  # [N] bool: the mask is the object's previous frame's

    @property
    def num_prompts(self) -> int:
        return self.mask_logits.shape[0]

    @classmethod
    def from_tokens(cls, tokens: PromptTokens) -> 'DensePrompts':
        """The dense prompts of encoded prompts, row for row (none propagated)."""
        return cls(**{f.name: getattr(tokens, f.name) for f in fields(cls) if f.name != 'propagated'})

    @classmethod
    def from_masks(cls, mask_logits: Tensor) -> 'DensePrompts':
        """Tracked objects' propagated masks (``[N, h, w]`` logits, their only prompt) on frame 0
        of sample 0."""
        n, dev = mask_logits.shape[0], mask_logits.device
        zeros = torch.zeros(n, dtype=torch.long, device=dev)
        ones = torch.ones(n, dtype=torch.bool, device=dev)
        return cls(zeros, zeros, mask_logits, ones, mask_logits.new_zeros(n, 0, 2),
                   zeros.new_zeros(n, 0), ones)

    def propagated_rows(self) -> Tensor:
        """``propagated`` as a bool ``[N]`` (all False when unset)."""
        if self.propagated is None:
            return torch.zeros(self.num_prompts, dtype=torch.bool, device=self.mask_logits.device)
        return self.propagated

    @classmethod
    def cat(cls, parts: Sequence['DensePrompts']) -> 'DensePrompts':
        """The rows of ``parts`` in order; clicks padded (``PADDING``) to the longest row."""
        if not parts:
            raise ValueError('DensePrompts.cat: nothing to concatenate')
        p_max = max(d.point_labels.shape[1] for d in parts)

        def pad(x: Tensor, value: float) -> Tensor:  # [N, P, ...] -> [N, p_max, ...]
            extra = x.new_full((x.shape[0], p_max - x.shape[1], *x.shape[2:]), value)
            return torch.cat([x, extra], dim=1)

        return cls(torch.cat([d.batch_index for d in parts]),
                   torch.cat([d.frame_index for d in parts]),
                   torch.cat([d.mask_logits for d in parts]),
                   torch.cat([d.mask_valid for d in parts]),
                   torch.cat([pad(d.point_coords, 0.) for d in parts]),
                   torch.cat([pad(d.point_labels, PADDING) for d in parts]),
                   torch.cat([d.propagated_rows() for d in parts]))


@MODELS.register_module()
class PromptMaskRefiner(BaseModule):
    """Residual per-pixel correction of a prompt query's mask logits.

    A prompt query's mask is one dynamic kernel applied to the feature map, so a click or a
    previous mask can only move it globally (through the pooled query). This module gives them a
    local path: per prompt row, a small conv net sees, on the mask grid,

    - the row's frame feature projected to ``hidden_channels`` (1x1 conv),
    - the current mask probability (sigmoid of the logits),
    - the mask prompt probability (the previous mask fed back; 0 where the row has none) and a
      constant map of its validity flag,
    - positive and negative click maps: per cell, the maximum over the row's clicks of a Gaussian
      of the distance (in cells) between the cell centre and the click, std ``click_sigma``.

    and outputs delta logits added to the current ones.

    Rows whose mask prompt is PROPAGATED (a tracked object's previous mask, ``DensePrompts.
    propagated``) are also pulled towards it: ``logits + g * (propagated - logits)`` with a scalar
    ``g`` (``propagation_gain``), before the delta; the propagated logits are first bounded to
    ``±PROPAGATED_LOGIT_BOUND`` (the scale of a given mask prompt), so that a mask carried over many
    frames does not grow ever more confident and the correction can still move its boundary.
    With ``g`` = 1 the output is the previous mask plus the learned correction, SAM2-style mask
    propagation: a tracked object starts from where it was. ``correct_propagated=False`` also drops
    the correction on those rows (on seven DAVIS training videos it learned the training objects by
    heart and took held-out J&F below copying the first mask; ``vos_tiny_davis.py``).
    ``propagation_gain=None`` learns ``g`` from 0 instead; the output conv starts at zero, so with
    ``g`` = 0 the module is the identity at initialisation.

    Args:
        feat_channels: channels C of the frame feature.
        hidden_channels: width of the convs.
        num_layers: 3x3 convs after the input embedding, the output conv included (>= 1).
        click_sigma: std of the click Gaussians, in mask-grid cells.
        act_cfg: mmcv activation config.
        propagation_gain: a fixed ``g`` for propagated rows (1.0: mask propagation), or None to
            learn it, starting at 0.
        correct_propagated: False leaves propagated rows without the learned correction (with
            ``g`` = 1 their output is the propagated mask itself: what moves it is the tracker's
            mask warp, and nothing learns the training videos' objects by heart).
    """
    NUM_MAPS = 5  # mask, mask prompt, mask prompt validity, positive clicks, negative clicks
    PROPAGATED_LOGIT_BOUND = 5.0  # SAMPromptEncoder's mask prompts are ±5 logits

    def __init__(self,
                 feat_channels: int,
                 hidden_channels: int = 16,
                 num_layers: int = 3,
                 click_sigma: float = 1.0,
                 act_cfg: dict = dict(type='ReLU'),
                 propagation_gain: Optional[float] = None,
                 correct_propagated: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError(f'PromptMaskRefiner: num_layers must be >= 1, got {num_layers}')
        if click_sigma <= 0:
            raise ValueError(f'PromptMaskRefiner: click_sigma must be > 0, got {click_sigma}')
        self.feat_channels, self.click_sigma = feat_channels, float(click_sigma)
        self.feat_proj = nn.Conv2d(feat_channels, hidden_channels, 1)
        self.map_embed = nn.Conv2d(self.NUM_MAPS, hidden_channels, 3, padding=1)
        self.act = build_activation_layer(act_cfg)
        self.body = nn.Sequential(*[
            ConvModule(hidden_channels, hidden_channels, 3, padding=1, act_cfg=act_cfg)
            for _ in range(num_layers - 1)])
        self.out_conv = nn.Conv2d(hidden_channels, 1, 3, padding=1)
        constant_init(self.out_conv, 0)
        self.correct_propagated = correct_propagated
        self.learn_propagation_gain = propagation_gain is None
        if self.learn_propagation_gain:
            self.propagation_gain = nn.Parameter(torch.zeros(()))
        else:  # a constant of the config, not a checkpoint's: not saved
            self.register_buffer('propagation_gain', torch.tensor(float(propagation_gain)),
                                 persistent=False)

    def init_weights(self) -> None:
        # whatever init_cfg draws, the correction must start at zero
        super().init_weights()
        constant_init(self.out_conv, 0)
        if self.learn_propagation_gain:
            nn.init.zeros_(self.propagation_gain)

    def click_maps(self, point_coords: Tensor, point_labels: Tensor, grid_hw: tuple) -> Tensor:
        """Positive / negative click maps ``[R, 2, h, w]`` in 0..1 on a grid over the input.

        ``point_coords [R, P, 2]`` are (x, y) / (W, H) of the padded input; the click at pixel
        (x, y) peaks in cell (y // stride, x // stride)."""
        h, w = grid_hw
        r = point_coords.shape[0]
        if point_coords.numel() == 0:
            return point_coords.new_zeros(r, 2, h, w)
        cx = point_coords[..., 0] * w  # click position in cell units
        cy = point_coords[..., 1] * h
        ys = torch.arange(h, device=point_coords.device, dtype=point_coords.dtype) + 0.5
        xs = torch.arange(w, device=point_coords.device, dtype=point_coords.dtype) + 0.5
        d2 = (ys[None, None, :, None] - cy[..., None, None]) ** 2 \
            + (xs[None, None, None, :] - cx[..., None, None]) ** 2  # [R, P, h, w]
        g = torch.exp(-d2 / (2 * self.click_sigma ** 2))
        maps = [(g * (point_labels == lab)[..., None, None].to(g)).amax(1)
                for lab in (POSITIVE, NEGATIVE)]
        return torch.stack(maps, dim=1)

    def project(self, feat: Tensor) -> Tensor:
        """The prompt-independent part: frame features ``[N, C, h, w]`` or clips ``[B, C, T, h,
        w]`` -> the same with ``hidden`` channels. A caller decoding several prompts on the same
        frames computes it once (``forward(projected=True)``)."""
        if feat.dim() not in (4, 5) or feat.shape[1] != self.feat_channels:
            raise ValueError(f'PromptMaskRefiner.project: expects [N, {self.feat_channels}, h, w] or '
                             f'[B, {self.feat_channels}, T, h, w], got {tuple(feat.shape)}')
        if feat.dim() == 4:
            return self.feat_proj(feat)
        b, c, t, h, w = feat.shape  # a 1x1 conv per frame
        out = self.feat_proj(feat.transpose(1, 2).reshape(b * t, c, h, w))
        return out.reshape(b, t, -1, h, w).transpose(1, 2)

    def forward(self, feat: Tensor, mask_logits: Tensor, prompt_logits: Tensor,
                prompt_valid: Tensor, point_coords: Tensor, point_labels: Tensor,
                propagated: Optional[Tensor] = None, projected: bool = False) -> Tensor:
        """Refine one mask per row.

        Args:
            feat: ``[R, C, h, w]`` each row's frame feature (``projected``: already
                ``project``-ed, ``[R, hidden, h, w]``).
            mask_logits: ``[R, h, w]`` current mask logits.
            prompt_logits: ``[R, h, w]`` mask prompt logits (``PromptTokens.mask_logits``).
            prompt_valid: bool ``[R]``: the row has a mask prompt.
            point_coords / point_labels: ``[R, P, 2]`` / ``[R, P]`` (``PromptTokens``).
            propagated: bool ``[R]``: the mask prompt is the row's propagated previous mask
                (default: none is).
            projected: ``feat`` is ``project(frame feature)`` (kept by the caller).

        Returns:
            ``[R, h, w]`` refined logits.
        """
        r, h, w = mask_logits.shape
        channels = self.feat_proj.out_channels if projected else self.feat_channels
        if feat.dim() != 4 or feat.shape[0] != r or feat.shape[1] != channels \
                or feat.shape[-2:] != (h, w):
            raise ValueError(f'PromptMaskRefiner: feat must be [R={r}, {channels}, {h}, {w}] (one '
                             f'{"projected " if projected else ""}frame feature per mask), got '
                             f'{tuple(feat.shape)}')
        if prompt_logits.shape != mask_logits.shape or prompt_valid.shape != (r, ):
            raise ValueError(f'PromptMaskRefiner: prompt_logits must be {tuple(mask_logits.shape)} '
                             f'and prompt_valid [{r}], got {tuple(prompt_logits.shape)} and '
                             f'{tuple(prompt_valid.shape)}')
        if point_coords.shape[:2] != point_labels.shape or point_coords.shape[0] != r:
            raise ValueError(f'PromptMaskRefiner: point_coords [R={r}, P, 2] and point_labels '
                             f'[R, P] disagree: {tuple(point_coords.shape)} vs '
                             f'{tuple(point_labels.shape)}')
        if r == 0:
            return mask_logits
        valid = prompt_valid.to(mask_logits)[:, None, None]
        maps = torch.cat([
            mask_logits.sigmoid()[:, None],
            (prompt_logits.sigmoid() * valid)[:, None],
            valid.expand(r, h, w)[:, None],
            self.click_maps(point_coords.to(mask_logits), point_labels, (h, w))], dim=1)
        x = self.act((feat if projected else self.feat_proj(feat)) + self.map_embed(maps))
        if propagated is not None:
            pulled = (propagated & prompt_valid).to(mask_logits)[:, None, None]
            bound = self.PROPAGATED_LOGIT_BOUND
            target = prompt_logits.clamp(-bound, bound)
            mask_logits = mask_logits + self.propagation_gain * pulled * (target - mask_logits)
        delta = self.out_conv(self.body(x))[:, 0]
        if propagated is not None and not self.correct_propagated:
            delta = delta * ~propagated[:, None, None]
        return mask_logits + delta
