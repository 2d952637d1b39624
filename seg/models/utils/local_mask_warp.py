"""Carry object masks from one video frame to the next by local feature correspondence."""
import math

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from seg.registry import MODELS


@MODELS.register_module()
class LocalMaskWarp(BaseModule):
    """Space-time correspondence for mask propagation, restricted to a local window.

    Every cell x of the current frame's mask grid attends to the cells y of the previous frame
    within ``radius`` cells (a (2r+1)^2 window) with weights ``softmax_y(<k_t(x), k_{t-1}(y)> / T)``
    over L2-normalised keys ``k = key_proj(feature)``, and takes the weighted mean of the previous
    mask probabilities there. The result is a convex combination of where the object was, moved
    by what matches: a tracked object can follow motion of up to ``radius`` cells per frame but
    cannot appear far from its previous mask. What is learned is the matching (the key
    projection and the temperature ``T``), which transfers across videos, not what the objects
    of the training videos look like.

    Args:
        feat_channels: channels of the frame feature the keys are projected from.
        key_channels: key dimension.
        radius: half-width of the search window, in mask-grid cells.
        temperature: the initial softmax temperature of the cosine similarities (learned).
    """

    def __init__(self, feat_channels: int, key_channels: int = 32, radius: int = 3,
                 temperature: float = 0.05, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if radius < 1 or key_channels < 1 or temperature <= 0:
            raise ValueError(f'LocalMaskWarp: radius and key_channels must be >= 1 and temperature '
                             f'> 0, got {radius}, {key_channels}, {temperature}')
        self.radius = radius
        self.key_proj = nn.Conv2d(feat_channels, key_channels, 1)
        self.log_inv_temperature = nn.Parameter(torch.tensor(-math.log(temperature)))
        self.feat_weight = nn.Parameter(torch.tensor(0.3))
        self.image_weight = nn.Parameter(torch.tensor(1.0))

    def keys(self, feat: Tensor, image: Tensor) -> Tensor:
        """Frame features ``[N, C, h, w]`` and the normalised input images ``[N, 3, H, W]`` ->
        keys ``[N, key_channels + 27, h, w]``: the projected features and the 3x3 colour patch
        around each cell (the image averaged over cells), each L2-normalised and weighted."""
        if feat.dim() != 4 or feat.shape[1] != self.key_proj.in_channels:
            raise ValueError(f'LocalMaskWarp.keys: expects [N, {self.key_proj.in_channels}, h, w], '
                             f'got {tuple(feat.shape)}')
        cells = F.adaptive_avg_pool2d(image, feat.shape[-2:])
        # shape[0], not len(): the ONNX tracer records len() as a constant
        patches = F.unfold(cells, 3, padding=1).view(image.shape[0], 27, *feat.shape[-2:])
        patches = patches - patches.mean(1, keepdim=True)
        return torch.cat([self.feat_weight * F.normalize(self.key_proj(feat), dim=1),
                          self.image_weight * F.normalize(patches, dim=1)], dim=1)

    def forward(self, prev_keys: Tensor, keys: Tensor, probs: Tensor) -> Tensor:
        """Warp mask probabilities ``[K, h, w]`` of the frame with ``prev_keys [D, h, w]`` onto the
        frame with ``keys [D, h, w]``; returns ``[K, h, w]`` probabilities."""
        if prev_keys.shape != keys.shape or keys.dim() != 3 or probs.dim() != 3 \
                or probs.shape[-2:] != keys.shape[-2:]:
            raise ValueError(f'LocalMaskWarp: keys [D, h, w] of both frames and probs [K, h, w] on '
                             f'the same grid expected, got {tuple(prev_keys.shape)}, '
                             f'{tuple(keys.shape)}, {tuple(probs.shape)}')
        d, h, w = keys.shape
        size, pad = 2 * self.radius + 1, self.radius
        window = F.unfold(prev_keys[None], size, padding=pad).view(d, size * size, h * w)
        sim = (keys.reshape(d, 1, h * w) * window).sum(0) * self.log_inv_temperature.exp()
        # window cells outside the frame take no weight (zero padding would vote for background)
        inside = F.unfold(keys.new_ones(1, 1, h, w), size, padding=pad).view(size * size, h * w)
        weights = sim.masked_fill(inside == 0, float('-inf')).softmax(0)  # [S, hw]
        moved = F.unfold(probs[:, None], size, padding=pad).view(probs.shape[0], size * size, h * w)
        return (moved * weights).sum(1).view(-1, h, w)
