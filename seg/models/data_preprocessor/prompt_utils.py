"""Per-sample resize and padding steps shared by the image and video preprocessors.

Resizing inside the preprocessor (on the device, after decoding) is the real-time path: a 1080p frame is
decoded once on the CPU and scaled on the GPU. Whatever scaling is applied to the image is applied to its
prompts and ground truth, so coordinates stay in the packed-image frame (see ``seg.structures.prompts``).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import BaseBoxes

from seg.structures import scale_prompts

# Resizing an integer image converts at most this many input elements to float at a time (8 MB),
# so the memory of a resize scales with its output, not with a 48 MP input (576 MB as float).
RESIZE_CHUNK_ELEMENTS = 2 * 2**20


class ResizeLongestSideMixin:
    """Adds the ``resize_longest_side`` option to an mmdet data preprocessor (cooperative
    ``__init__``: list it before the preprocessor base class), and ``test_resize_longest_side``:
    the size at inference when it differs from training's (a model trained on small crops may be
    evaluated at a finer processing size); None = ``resize_longest_side``."""

    def __init__(self, resize_longest_side: Optional[int] = None,
                 test_resize_longest_side: Optional[int] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        for name, value in (('resize_longest_side', resize_longest_side),
                            ('test_resize_longest_side', test_resize_longest_side)):
            if value is not None and value <= 0:
                raise ValueError(f'{name} must be positive, got {value}')
        self.resize_longest_side = resize_longest_side
        self.test_resize_longest_side = test_resize_longest_side

    def longest_side(self, training: bool) -> Optional[int]:
        """The processing size (longer side) of a training or an inference batch."""
        if not training and self.test_resize_longest_side is not None:
            return self.test_resize_longest_side
        return self.resize_longest_side


def longest_side_shape(h: int, w: int, longest: int) -> Tuple[int, int]:
    """Shape with the longer side equal to ``longest`` and the aspect ratio kept."""
    scale = longest / max(h, w)
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))


def resize_sample(img: torch.Tensor, sample: DetDataSample, longest: int,
                  scale_gt: bool = True) -> torch.Tensor:
    """Resize one image ([C, H, W]) to ``longest`` and scale its sample to match.

    Updates ``img_shape`` and ``scale_factor`` (composed with any earlier scaling, so ``rescale`` to
    ``ori_shape`` still works), prompt coordinates and mask prompts, and, with ``scale_gt`` (training:
    the losses need targets in the input frame), ground-truth boxes and masks. At test time the GT
    stays in the original frame, where metrics compare the rescaled predictions with it.
    """
    if img.dim() != 3:
        raise ValueError(f'resize_sample expects an image [C, H, W], got {tuple(img.shape)}')
    h, w = img.shape[-2:]
    new_h, new_w = longest_side_shape(h, w, longest)
    if (new_h, new_w) == (h, w):
        return img
    sx, sy = new_w / w, new_h / h
    img = resize_bilinear(img, (new_h, new_w))
    old_sx, old_sy = sample.metainfo.get('scale_factor', (1.0, 1.0))
    sample.set_metainfo(dict(img_shape=(new_h, new_w), scale_factor=(old_sx * sx, old_sy * sy)))
    if 'prompts' in sample:
        prompts = scale_prompts(sample.prompts, sx, sy)
        if 'masks' in prompts:
            prompts.masks = _resize_masks(prompts.masks, (new_h, new_w))
        sample.prompts = prompts
    if scale_gt and 'gt_instances' in sample:
        gt = sample.gt_instances
        if 'bboxes' in gt:
            if isinstance(gt.bboxes, BaseBoxes):  # still mmdet box objects before boxtype2tensor
                gt.bboxes.rescale_((sx, sy))
            else:
                gt.bboxes = gt.bboxes * gt.bboxes.new_tensor([sx, sy, sx, sy])
        if 'masks' in gt:
            gt.masks = gt.masks.resize((new_h, new_w))
    return img


def resize_bilinear(x: torch.Tensor, size: Sequence[int],
                    chunk_elements: Optional[int] = None) -> torch.Tensor:
    """``F.interpolate(x[None].float(), size, 'bilinear', align_corners=False)[0]`` of a
    ``[C, H, W]`` tensor, in float32, without a float copy of the whole input when ``x`` is not
    float (a uint8 image, a bool mask).

    Bilinear resizing is separable: every output row blends two input rows, each resized along
    the width first (the source rows, weights and order of operations of ``F.interpolate``'s
    kernel, so the results agree to float rounding). Only the two source rows of a band of
    output rows are converted to float at a time, at most ``chunk_elements`` input elements, so
    the peak memory is the float output plus a bounded band. Smaller inputs take the plain
    ``F.interpolate`` path. ``chunk_elements`` None: ``RESIZE_CHUNK_ELEMENTS``."""
    chunk_elements = RESIZE_CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
    c, h, w = x.shape
    new_h, new_w = (int(v) for v in size)
    if x.is_floating_point() or 2 * x.numel() <= chunk_elements:
        return F.interpolate(x[None].float(), size=(new_h, new_w), mode='bilinear',
                             align_corners=False)[0]
    # source rows and weights as ATen computes them for align_corners=False (float32 math)
    scale = torch.tensor(h, dtype=torch.float32) / new_h
    src = ((torch.arange(new_h, dtype=torch.float32) + 0.5) * scale - 0.5).clamp(min=0)
    y0 = src.long().clamp(max=h - 1)
    y1 = (y0 + 1).clamp(max=h - 1)
    w1 = (src - y0.float()).to(x.device)[None, :, None]
    y0, y1 = y0.to(x.device), y1.to(x.device)
    out = torch.empty(c, new_h, new_w, dtype=torch.float32, device=x.device)
    rows = max(1, chunk_elements // (2 * c * w))
    for a in range(0, new_h, rows):
        b = min(a + rows, new_h)
        top, bottom = (F.interpolate(x.index_select(1, y[a:b]).float().reshape(1, -1, w),
                                     size=new_w, mode='linear', align_corners=False
                                     ).reshape(c, b - a, new_w) for y in (y0, y1))
        out[:, a:b] = (1 - w1[:, a:b]) * top + w1[:, a:b] * bottom
    return out


def _resize_masks(masks: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    if masks.numel() == 0:
        return masks.new_zeros(masks.shape[0], *shape)
    return resize_bilinear(masks, shape)


def pad_prompt_masks(samples: List[DetDataSample], batch_input_shape: Sequence[int]) -> None:
    """Zero-pad mask prompts (bottom/right, like the image) to the batch input shape."""
    for sample in samples:
        if 'prompts' not in sample or 'masks' not in sample.prompts:
            continue
        m = sample.prompts.masks
        pad_h, pad_w = batch_input_shape[0] - m.shape[-2], batch_input_shape[1] - m.shape[-1]
        if pad_h < 0 or pad_w < 0:
            raise ValueError(f'mask prompt {tuple(m.shape[-2:])} is larger than the batch input '
                             f'{tuple(batch_input_shape)}: it must have the image size')
        sample.prompts.masks = F.pad(m.float(), (0, pad_w, 0, pad_h))
