"""Mask-quality (IoU) prediction for prompt queries, and the IoU target it is trained against."""
import torch
import torch.nn.functional as F
from mmdet.models.layers import MLP
from mmengine.model import BaseModule

from seg.registry import MODELS


@MODELS.register_module()
class QueryIoUHead(BaseModule):
    """An MLP mapping a decoder query ``[N, C]`` to the predicted IoU ``[N]`` (0..1, sigmoid) of
    that query's thresholded mask with the object it should segment (SAM's IoU prediction).

    A query of a clip is shared by all its frames, so its IoU is over every frame of the object.

    Args:
        in_channels: query channels C.
        hidden_channels: width of the hidden layers.
        num_layers: linear layers (ReLU between them), as SAM's 3-layer IoU MLP.
    """

    def __init__(self, in_channels: int = 256, hidden_channels: int = 256, num_layers: int = 3,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        if num_layers < 1:
            raise ValueError(f'QueryIoUHead: num_layers must be >= 1, got {num_layers}')
        self.in_channels = in_channels
        self.mlp = MLP(in_channels, hidden_channels, 1, num_layers)

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """``query [N, C]`` -> predicted IoU ``[N]`` in 0..1."""
        if query.dim() != 2 or query.shape[1] != self.in_channels:
            raise ValueError(f'QueryIoUHead expects queries [N, {self.in_channels}], got '
                             f'{tuple(query.shape)}')
        return self.mlp(query).squeeze(-1).sigmoid()


@torch.no_grad()
def grid_mask_iou(mask_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """IoU ``[N]`` of the thresholded predicted masks with their targets, over all frames.

    The prediction stays on its own grid: ``mask_logits [N, T, h, w] > 0``; the targets ``[N, T, H,
    W]`` become the fraction of each grid cell they cover (area pooling). This soft coverage is
    exact: it equals the full-resolution IoU of the predicted mask upsampled by nearest neighbour,
    and an object smaller than a cell still counts. Both empty counts as IoU 1. No gradient.
    """
    if mask_logits.dim() != 4 or targets.shape[:2] != mask_logits.shape[:2]:
        raise ValueError(f'grid_mask_iou: predictions [N, T, h, w] and targets [N, T, H, W] must '
                         f'share N and T, got {tuple(mask_logits.shape)} and {tuple(targets.shape)}')
    n, t, h, w = mask_logits.shape
    cover = F.interpolate(targets.float().flatten(0, 1)[:, None], size=(h, w), mode='area')
    cover = cover.reshape(n, -1)
    pred = (mask_logits > 0).reshape(n, -1).to(cover.dtype)
    inter = (pred * cover).sum(1)
    union = pred.sum(1) + cover.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-6), torch.ones_like(union))
