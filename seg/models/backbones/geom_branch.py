"""A light geometry branch (edges / contours) beside the CLIP tower, after MobileSAM's conv stages.

CLIP features are semantic but blurry at object boundaries. This branch reads the high-resolution
stride-4 and stride-8 features of the backbone and extracts geometry with depthwise-separable convs
(the depthwise filters of the first one start as edge detectors) and MBConv blocks, giving geometry
tokens at stride 8 and 16 for ``TokenFusionModule`` to attend to.
"""
from typing import List, Optional, Sequence

import torch
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmdet.models.layers import InvertedResidual
from mmengine.model import BaseModule
from torch import Tensor, nn

from seg.registry import MODELS

# Sobel-x, Sobel-y and Laplacian kernels (each of L1 norm 8), scaled to unit L1 norm so the edge
# responses keep the magnitude of the input features.
_EDGE_KERNELS = torch.tensor([
    [[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]],
    [[-1., -2., -1.], [0., 0., 0.], [1., 2., 1.]],
    [[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]],
]) / 8.


@MODELS.register_module()
class GeomBranch(BaseModule):
    """Geometry branch: stride-4 + stride-8 features -> geometry maps at stride 8 and 16.

    Args:
        in_channels: channels of the backbone's stride-4 and stride-8 features.
        channels: channels of the geometry outputs.
        out_strides: which geometry maps to return, a non-empty subset of (8, 16); the stride-16
            stage is only built when asked for, so no parameter sits idle.
        num_blocks: MBConv blocks refining the stride-8 map.
        expand_ratio: MBConv hidden expansion.
        edge_init: start the first depthwise filters as Sobel-x / Sobel-y / Laplacian (cycled over
            input channels) so the branch extracts edges from the first step.
        norm_cfg, act_cfg: mmcv norm / activation configs.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int = 64,
                 out_strides: Sequence[int] = (8, 16),
                 num_blocks: int = 1,
                 expand_ratio: int = 4,
                 edge_init: bool = True,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='GELU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != 2:
            raise ValueError(f'GeomBranch: in_channels must list the stride-4 and stride-8 channels, '
                             f'got {list(in_channels)}')
        if not out_strides or not set(out_strides) <= {8, 16} or len(set(out_strides)) != len(out_strides):
            raise ValueError(f'GeomBranch: out_strides must be a non-empty subset of (8, 16), got '
                             f'{list(out_strides)}')
        self.in_channels = list(in_channels)
        self.out_strides = sorted(out_strides)
        self.channels = channels
        self.edge_init = edge_init
        conv_kw = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        # stride 4 -> 8: depthwise (edge) filtering of every input channel, then a pointwise mix.
        self.edge = DepthwiseSeparableConvModule(in_channels[0], channels, 3, stride=2, padding=1,
                                                 **conv_kw)
        self.lateral8 = ConvModule(in_channels[1], channels, 1, **conv_kw)
        self.blocks8 = nn.Sequential(*[
            InvertedResidual(channels, channels, channels * expand_ratio, **conv_kw)
            for _ in range(num_blocks)
        ])
        self.down16 = (DepthwiseSeparableConvModule(channels, channels, 3, stride=2, padding=1, **conv_kw)
                       if 16 in self.out_strides else None)
        self._set_edge_filters()

    def init_weights(self) -> None:
        # ConvModule.init_weights re-draws every conv; put the edge filters back afterwards.
        super().init_weights()
        self._set_edge_filters()

    @torch.no_grad()
    def _set_edge_filters(self) -> None:
        if not self.edge_init:
            return
        weight = self.edge.depthwise_conv.conv.weight  # [C4, 1, 3, 3]
        idx = torch.arange(weight.shape[0]) % len(_EDGE_KERNELS)
        weight.copy_(_EDGE_KERNELS[idx].unsqueeze(1).to(weight))

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """``feats`` = (stride-4 map, stride-8 map) -> one geometry map per ``out_strides`` entry."""
        if len(feats) != 2:
            raise ValueError(f'GeomBranch: expected the stride-4 and stride-8 maps, got {len(feats)} maps')
        c4, c8 = feats
        for name, feat, ch in (('stride-4', c4, self.in_channels[0]), ('stride-8', c8, self.in_channels[1])):
            if feat.dim() != 4 or feat.shape[1] != ch:
                raise ValueError(f'GeomBranch: {name} map must be [B, {ch}, H, W], got {tuple(feat.shape)}')
        if tuple(c8.shape[-2:]) != tuple((s + 1) // 2 for s in c4.shape[-2:]):
            raise ValueError(f'GeomBranch: stride-8 map {tuple(c8.shape[-2:])} is not half the stride-4 map '
                             f'{tuple(c4.shape[-2:])}')
        g8 = self.blocks8(self.edge(c4) + self.lateral8(c8))
        outs = {8: g8}
        if self.down16 is not None:
            outs[16] = self.down16(g8)
        return [outs[s] for s in self.out_strides]
