"""Where a mask grid lies on the image: resampling grid logits to the image, and the grid cells
inside the image (not in the batch padding)."""
from typing import Tuple

import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample


def to_output_res(logits: torch.Tensor, sample: DetDataSample, input_hw: Tuple[int, int],
                  rescale: bool) -> torch.Tensor:
    """Mask logits ``[N, h, w]`` on the grid over the padded input ``input_hw`` -> the image
    without padding (``img_shape``), or its original size (``ori_shape``) when ``rescale``."""
    up = F.interpolate(logits[None], size=input_hw, mode='bilinear', align_corners=False)
    h, w = sample.img_shape[:2]
    up = up[..., :h, :w]
    if rescale:
        up = F.interpolate(up, size=tuple(sample.ori_shape[:2]), mode='bilinear', align_corners=False)
    return up[0]


def image_region(sample: DetDataSample, input_hw: Tuple[int, int], grid_hw: Tuple[int, int],
                 device: torch.device) -> torch.Tensor:
    """bool ``[h, w]``: the cells of a mask grid over the padded input whose centre lies inside
    the image (``img_shape``), not in the padding."""
    (h, w), (img_h, img_w) = grid_hw, sample.img_shape[:2]
    ys = (torch.arange(h, device=device) + 0.5) * input_hw[0] / h < img_h
    xs = (torch.arange(w, device=device) + 0.5) * input_hw[1] / w < img_w
    return ys[:, None] & xs[None]
