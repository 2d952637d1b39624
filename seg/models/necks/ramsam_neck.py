"""RapSAM's pixel decoder (``YOSONeck``) and the FastSAM2 mask boundary refiner (``MaskStateRefiner``).

``YOSONeck`` is a light deformable FPN: each pyramid level is projected to ``agg_dim`` channels,
merged top-down through deformable 3x3 convs, and all levels are upsampled to stride 4, concatenated
with CoordConv (x, y) channels and fused into ONE stride-4 map that the head's queries read masks
from. Deformable convolution is torchvision's (no compiled mmcv ops needed). Its real-time variant
(``conv_type='separable', fuse='sum1x1'``) computes the same kind of map for about a sixth of the
multiply-adds.

``MaskStateRefiner`` runs after the head: a small conv net that looks at the stride-4 feature and a
query's current mask and outputs a residual correction of that mask's logits (boundaries), so the
transformer head need not resolve fine boundaries itself.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule, build_activation_layer, build_norm_layer
from mmengine.model import BaseModule, constant_init
from torch import Tensor, nn
from torchvision.ops import DeformConv2d

from seg.registry import MODELS


class _DeformConvBlock(nn.Module):
    """Deformable 3x3 conv (offsets predicted from its input) + norm + activation."""

    def __init__(self, channels: int, norm_cfg: dict, act_cfg: dict) -> None:
        super().__init__()
        # zero offsets at init: the block starts as a regular 3x3 conv and learns where to look
        self.offset = nn.Conv2d(channels, 2 * 3 * 3, 3, padding=1)
        constant_init(self.offset, 0)
        self.conv = DeformConv2d(channels, channels, 3, padding=1, bias=False)
        self.norm = build_norm_layer(norm_cfg, channels)[1]
        self.act = build_activation_layer(act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        offset = self.offset(x)
        # torchvision's CPU deform_conv2d segfaults on NaN offsets (a NaN input or NaN weights
        # make them NaN): a clear error instead; on CUDA NaN only propagates (no sync added)
        if offset.device.type == 'cpu' and bool(torch.isnan(offset).any()):
            raise ValueError(f'YOSONeck: NaN in the deformable-conv offsets of a '
                             f'{tuple(x.shape)} feature map: the input image or the model weights '
                             'hold NaN / inf')
        return self.act(self.norm(self.conv(x, offset)))


def coord_channels(feat: Tensor) -> Tensor:
    """CoordConv channels for a [B, C, H, W] map: [B, 2, H, W] with x then y in [-1, 1]."""
    b, _, h, w = feat.shape
    ys = torch.linspace(-1, 1, h, device=feat.device, dtype=feat.dtype)
    xs = torch.linspace(-1, 1, w, device=feat.device, dtype=feat.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([grid_x, grid_y]).expand(b, -1, -1, -1)


@MODELS.register_module()
class YOSONeck(BaseModule):
    """Light deformable FPN: the backbone pyramid -> one stride-4 map [B, hidden_dim, H/4, W/4].

    Where the cost is (R50 pyramid at 1024x576, multiply-adds): the baseline's 3x3 fusion conv over
    the concatenated stride-4 levels is ~44 G of its ~56 G, the deformable 3x3 at stride 4 another
    ~6 G (and torchvision's deformable kernel is several times slower per multiply-add than a plain
    conv). The real-time settings remove both:

    - ``fuse='sum1x1'``: a 1x1 conv over concatenated channels equals the sum of per-level 1x1
      convs, and a 1x1 conv commutes with bilinear upsampling, so each level is projected to
      ``hidden_dim`` at its OWN resolution and only the projections are upsampled and summed
      (the same function class as a 1x1 fusion conv; the 3x3 context comes from the top-down path);
    - ``conv_type='separable'``: depthwise 3x3 + pointwise convs in the top-down path (also
      exportable to ONNX / TensorRT, unlike the deformable kernel).

    The stride-4 level keeps a 3x3 conv (``finest_conv``): without any spatial filtering at the
    mask resolution, the masks a student learns from a teacher stayed far from the teacher's in the
    distillation test (``test_rapsam_training_behaviour``).

    Args:
        in_channels: channels of the input levels, finest (stride 4) first.
        agg_dim: channels of every level inside the FPN.
        hidden_dim: channels of the output map.
        norm_cfg, act_cfg: mmcv norm / activation configs (GroupNorm by default: batch-size free).
        conv_type: the top-down path's 3x3 convs: ``'deformable'`` (RapSAM), ``'plain'`` or
            ``'separable'`` (depthwise + pointwise).
        finest_conv: whether the stride-4 level gets a 3x3 conv in the top-down path.
        fuse: ``'concat3x3'`` (RapSAM: a 3x3 conv over all levels upsampled to stride 4 and
            concatenated with CoordConv channels) or ``'sum1x1'`` (see above; the CoordConv channels
            get their own 1x1 projection).
    """

    FUSE_MODES = ('concat3x3', 'sum1x1')
    CONV_TYPES = ('deformable', 'plain', 'separable')

    def __init__(self,
                 in_channels: Sequence[int],
                 agg_dim: int = 128,
                 hidden_dim: int = 256,
                 norm_cfg: dict = dict(type='GN', num_groups=32),
                 act_cfg: dict = dict(type='ReLU'),
                 conv_type: str = 'deformable',
                 finest_conv: bool = True,
                 fuse: str = 'concat3x3',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) < 2:
            raise ValueError(f'YOSONeck: needs at least 2 levels, got in_channels={list(in_channels)}')
        if fuse not in self.FUSE_MODES:
            raise ValueError(f'YOSONeck: fuse must be one of {self.FUSE_MODES}, got {fuse!r}')
        if conv_type not in self.CONV_TYPES:
            raise ValueError(f'YOSONeck: conv_type must be one of {self.CONV_TYPES}, got '
                             f'{conv_type!r}')
        self.in_channels = list(in_channels)
        self.hidden_dim = hidden_dim
        self.fuse_mode = fuse
        self.lateral_convs = nn.ModuleList(
            ConvModule(c, agg_dim, 1, norm_cfg=norm_cfg, act_cfg=None) for c in in_channels)

        def td_conv(level: int) -> nn.Module:
            if level == 0 and not finest_conv:
                return nn.Identity()
            if conv_type == 'deformable':
                return _DeformConvBlock(agg_dim, norm_cfg, act_cfg)
            conv = ConvModule if conv_type == 'plain' else DepthwiseSeparableConvModule
            return conv(agg_dim, agg_dim, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.topdown_convs = nn.ModuleList(td_conv(i) for i in range(len(in_channels)))
        if fuse == 'concat3x3':
            self.fuse = ConvModule(agg_dim * len(in_channels) + 2, hidden_dim, 3, padding=1,
                                   norm_cfg=norm_cfg, act_cfg=act_cfg)
        else:
            # no biases: the norm after the sum removes them (as ConvModule drops a conv's bias
            # before a norm), and their near-zero gradients would only carry rounding noise
            self.level_projs = nn.ModuleList(
                nn.Conv2d(agg_dim, hidden_dim, 1, bias=False) for _ in in_channels)
            self.coord_proj = nn.Conv2d(2, hidden_dim, 1, bias=False)
            self.fuse_norm = build_norm_layer(norm_cfg, hidden_dim)[1]
            self.fuse_act = build_activation_layer(act_cfg)
        # linear output: the head takes dot products of queries with this map
        self.out_conv = nn.Conv2d(hidden_dim, hidden_dim, 1)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """``feats``: one [B, C_i, H_i, W_i] map per level, finest first -> [B, hidden_dim, H_0, W_0]."""
        if len(feats) != len(self.in_channels):
            raise ValueError(f'YOSONeck: got {len(feats)} feature levels, built for '
                             f'{len(self.in_channels)} (in_channels={self.in_channels})')
        for i, (feat, ch) in enumerate(zip(feats, self.in_channels)):
            if feat.dim() != 4 or feat.shape[1] != ch or feat.shape[0] != feats[0].shape[0]:
                raise ValueError(f'YOSONeck: level {i} must be [{feats[0].shape[0]}, {ch}, H, W] '
                                 f'(in_channels={self.in_channels}), got {tuple(feat.shape)}')
        # top-down: coarsest first, each finer level adds the upsampled coarser result
        outs = [None] * len(feats)
        top = None
        for i in range(len(feats) - 1, -1, -1):
            x = self.lateral_convs[i](feats[i])
            if top is not None:
                x = x + F.interpolate(top, size=x.shape[-2:], mode='bilinear', align_corners=False)
            top = outs[i] = self.topdown_convs[i](x)
        size = outs[0].shape[-2:]
        if self.fuse_mode == 'sum1x1':
            fused = self.coord_proj(coord_channels(outs[0])) + self.level_projs[0](outs[0])
            for proj, o in zip(self.level_projs[1:], outs[1:]):
                fused = fused + F.interpolate(proj(o), size=size, mode='bilinear',
                                              align_corners=False)
            return self.out_conv(self.fuse_act(self.fuse_norm(fused)))
        fused = [outs[0]] + [
            F.interpolate(o, size=size, mode='bilinear', align_corners=False) for o in outs[1:]
        ]
        fused.append(coord_channels(outs[0]))
        return self.out_conv(self.fuse(torch.cat(fused, dim=1)))


@MODELS.register_module()
class MaskStateRefiner(BaseModule):
    """Residual boundary correction of per-query mask logits from the pixel feature.

    ``forward(feat [B, C, H, W], mask_logits [B, Q, h, w]) -> [B, Q, h, w]``. The feature is
    projected once per image; each query's mask state (its probability map) is embedded by a 3x3 conv
    and added to it, so the first layer costs one small conv per query rather than a conv over
    [feature, mask] concatenated per query. The queries are then batched as [B * Q, hidden, h, w]
    through ``num_layers`` 3x3 convs, the last of which outputs the logit correction and starts at
    zero: the refiner is the identity at initialisation. Memory grows as B * Q * hidden * h * w.

    Args:
        feat_channels: channels C of the pixel feature (the neck's ``hidden_dim``).
        hidden_channels: width of the per-query convs.
        num_layers: 3x3 convs after the input embedding, the output conv included (>= 1).
        act_cfg: mmcv activation config.
    """

    def __init__(self,
                 feat_channels: int,
                 hidden_channels: int = 16,
                 num_layers: int = 3,
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError(f'MaskStateRefiner: num_layers must be >= 1, got {num_layers}')
        self.feat_channels = feat_channels
        self.feat_proj = nn.Conv2d(feat_channels, hidden_channels, 1)
        self.mask_embed = nn.Conv2d(1, hidden_channels, 3, padding=1)
        self.act = build_activation_layer(act_cfg)
        self.body = nn.Sequential(*[
            ConvModule(hidden_channels, hidden_channels, 3, padding=1, act_cfg=act_cfg)
            for _ in range(num_layers - 1)
        ])
        self.out_conv = nn.Conv2d(hidden_channels, 1, 3, padding=1)
        constant_init(self.out_conv, 0)

    def init_weights(self) -> None:
        # whatever init_cfg draws, the refiner must start as the identity
        super().init_weights()
        constant_init(self.out_conv, 0)

    def project(self, feat: Tensor) -> Tensor:
        """The per-image part, ``feat [B, C, H, W] -> [B, hidden, H, W]``: no mask enters it,
        so a caller decoding several prompts on one image computes it once (``forward``'s
        ``projected``)."""
        return self.feat_proj(feat)

    def forward(self, feat: Tensor, mask_logits: Tensor,
                projected: Optional[Tensor] = None) -> Tensor:
        """``projected``: ``project(feat)`` when the caller kept it (else computed here)."""
        if feat.dim() != 4 or feat.shape[1] != self.feat_channels:
            raise ValueError(f'MaskStateRefiner: feat must be [B, {self.feat_channels}, H, W], got '
                             f'{tuple(feat.shape)}')
        if mask_logits.dim() != 4 or mask_logits.shape[0] != feat.shape[0]:
            raise ValueError(f'MaskStateRefiner: mask_logits must be [B={feat.shape[0]}, Q, h, w], got '
                             f'{tuple(mask_logits.shape)}')
        b, q, h, w = mask_logits.shape
        if q == 0:
            return mask_logits
        img = self.project(feat) if projected is None else projected
        if img.shape[-2:] != (h, w):
            img = F.interpolate(img, size=(h, w), mode='bilinear', align_corners=False)
        state = self.mask_embed(mask_logits.sigmoid().reshape(b * q, 1, h, w))
        x = self.act(state.view(b, q, -1, h, w) + img.unsqueeze(1))
        delta = self.out_conv(self.body(x.flatten(0, 1)))
        return mask_logits + delta.view(b, q, h, w)
