"""Dual-Path Self-Refinement (DPSR) loss: temporal consistency between consecutive video frames."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmdet.models.losses import DiceLoss, MSELoss
from torch import Tensor, nn

from seg.registry import MODELS


@MODELS.register_module()
class DPSRLoss(nn.Module):
    """``lambda_mask * Dice(prev mask, current mask) + lambda_feat * MSE(prev embed, current embed)``.

    Computed per tracked object between its previous-frame and current-frame predictions. The
    previous frame is the target: its mask probabilities (sigmoid of the logits, kept soft) and its
    embedding are detached, so the loss pulls the current frame towards the previous one and not
    the reverse. A previous mask of another size is aligned to the current one by bilinear resizing
    of its logits. Uses mmdet's ``DiceLoss`` (on sigmoid probabilities) and ``MSELoss``.

    Args:
        lambda_mask: weight of the Dice term.
        lambda_feat: weight of the embedding MSE term.
        naive_dice: mmdet's Dice variant (False: the V-Net squared-denominator form).
        eps: Dice smoothing term.
    """

    def __init__(self,
                 lambda_mask: float = 1.0,
                 lambda_feat: float = 1.0,
                 naive_dice: bool = False,
                 eps: float = 1e-3) -> None:
        super().__init__()
        self.dice = DiceLoss(use_sigmoid=True, activate=True, naive_dice=naive_dice,
                             loss_weight=lambda_mask, eps=eps)
        self.mse = MSELoss(loss_weight=lambda_feat)

    def forward(self,
                prev_mask_logits: Tensor,
                curr_mask_logits: Tensor,
                prev_embed: Tensor,
                curr_embed: Tensor,
                valid: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """prev/curr mask logits [N, H, W] (prev may be another size), prev/curr embeddings [N, C],
        ``valid`` [N] bool: objects present in both frames (default all).

        Returns ``dict(loss_dpsr_mask=..., loss_dpsr_feat=...)``, means over valid objects; zero
        (still attached to the graph) when none is valid.
        """
        n = curr_mask_logits.shape[0]
        if curr_mask_logits.dim() != 3 or prev_mask_logits.dim() != 3 or \
                prev_mask_logits.shape[0] != n:
            raise ValueError(f'DPSRLoss: mask logits must be [N, H, W] for the same N objects, got '
                             f'prev {tuple(prev_mask_logits.shape)}, '
                             f'curr {tuple(curr_mask_logits.shape)}')
        if curr_embed.dim() != 2 or curr_embed.shape[0] != n or prev_embed.shape != curr_embed.shape:
            raise ValueError(f'DPSRLoss: embeddings must both be [{n}, C], got prev '
                             f'{tuple(prev_embed.shape)}, curr {tuple(curr_embed.shape)}')
        if valid is not None:
            if valid.dtype != torch.bool or valid.shape != (n, ):
                raise ValueError(f'DPSRLoss: valid must be bool [{n}], got {valid.dtype} '
                                 f'{tuple(valid.shape)}')
            prev_mask_logits, curr_mask_logits = prev_mask_logits[valid], curr_mask_logits[valid]
            prev_embed, curr_embed = prev_embed[valid], curr_embed[valid]
        if curr_mask_logits.shape[0] == 0:
            zero = curr_mask_logits.sum() * 0 + curr_embed.sum() * 0
            return dict(loss_dpsr_mask=zero, loss_dpsr_feat=zero.clone())
        prev = prev_mask_logits.detach()
        if prev.shape[-2:] != curr_mask_logits.shape[-2:]:
            prev = F.interpolate(prev[:, None], size=curr_mask_logits.shape[-2:], mode='bilinear',
                                 align_corners=False)[:, 0]
        return dict(
            loss_dpsr_mask=self.dice(curr_mask_logits, prev.sigmoid()),
            loss_dpsr_feat=self.mse(curr_embed, prev_embed.detach()))
