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
    img = F.interpolate(img[None].float(), size=(new_h, new_w), mode='bilinear',
                        align_corners=False)[0]
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


def _resize_masks(masks: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    if masks.numel() == 0:
        return masks.new_zeros(masks.shape[0], *shape)
    return F.interpolate(masks[None].float(), size=tuple(shape), mode='bilinear',
                         align_corners=False)[0]


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
