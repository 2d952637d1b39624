"""Video features computed only where the tracked objects are (FastSAM2's regional compute).

On most frames of a video the objects cover a small part of the image, and a tracked object moves
little from one frame to the next. ``RegionalFeatures`` therefore runs the image encoder (backbone +
neck) on a crop of the frame around the previous frame's masks and pastes the result into the
feature map it keeps for the video; the rest of the map is the last full computation (a global view
that is ``refresh_period`` frames old at most). The saving is real: the encoder sees fewer pixels.

The crop is the union box of the previous masks, grown by ``margin`` times its size on each side
(motion) and by ``halo`` pixels of context that are computed but not pasted (so that the pasted
features saw the same neighbourhood as in a full computation, except at the image border, where a
full computation sees the border too). It is aligned to ``align`` pixels (the backbone's coarsest
stride), so that the crop's feature grid is a sub-grid of the frame's.
"""
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from torch import Tensor

from seg.registry import MODELS


@dataclass
class RegionState:
    """A video's state: its feature map ``[1, C, h, w]`` of an ``image_hw`` input and the number of
    frames since the map was last computed in full. ``last_fraction`` is the share of the frame's
    pixels the encoder saw on the latest frame (1.0 for a full computation)."""
    feat: Tensor
    image_hw: Tuple[int, int]
    age: int = 0
    last_fraction: float = 1.0


@MODELS.register_module()
class RegionalFeatures:
    """Per-frame encoder call restricted to the region around the previous masks.

    The defaults are the setting measured on held-out DAVIS (``docs/benchmarks/NOTES.md``,
    section 5): within 0.002 J&F of the full computation.

    Args:
        margin: growth of the masks' union box on each side, as a fraction of its width / height.
        halo: context pixels around the pasted region (computed, not pasted).
        refresh_period: a full computation at least every ``refresh_period`` frames (>= 1; 1
            computes every frame in full).
        max_area: above this share of the frame's pixels the crop is not worth it: full computation.
        align: crop corners are multiples of it (the backbone's coarsest stride).
    """

    def __init__(self, margin: float = 0.25, halo: int = 32, refresh_period: int = 8,
                 max_area: float = 0.6, align: int = 32) -> None:
        if margin < 0 or halo < 0:
            raise ValueError(f'RegionalFeatures: margin and halo must be >= 0, got {margin}, {halo}')
        if refresh_period < 1:
            raise ValueError(f'RegionalFeatures: refresh_period must be >= 1, got {refresh_period}')
        if not 0 < max_area <= 1:
            raise ValueError(f'RegionalFeatures: max_area must be in (0, 1], got {max_area}')
        if align < 1:
            raise ValueError(f'RegionalFeatures: align must be >= 1, got {align}')
        self.margin, self.halo, self.refresh_period = margin, halo, refresh_period
        self.max_area, self.align = max_area, align

    def crop_box(self, masks: Tensor, image_hw: Tuple[int, int]
                 ) -> Optional[Tuple[int, int, int, int]]:
        """``masks [K, h, w]`` (logits on a grid covering the ``image_hw`` input) -> the crop
        ``(x0, y0, x1, y1)`` in input pixels, or None when the frame is to be computed in full
        (no foreground, or a crop above ``max_area``)."""
        if masks.dim() != 3:
            raise ValueError(f'RegionalFeatures: masks must be [K, h, w], got {tuple(masks.shape)}')
        height, width = image_hw
        fg = (masks > 0).any(0)
        rows, cols = fg.any(1).nonzero(), fg.any(0).nonzero()
        if not len(rows):
            return None
        sy, sx = height / fg.shape[0], width / fg.shape[1]
        y0, y1 = rows[0].item() * sy, (rows[-1].item() + 1) * sy
        x0, x1 = cols[0].item() * sx, (cols[-1].item() + 1) * sx
        grow_y = self.margin * (y1 - y0) + self.halo
        grow_x = self.margin * (x1 - x0) + self.halo
        a = self.align
        box = (max(0, int((x0 - grow_x) // a) * a), max(0, int((y0 - grow_y) // a) * a),
               min(width, -int(-(x1 + grow_x) // a) * a), min(height, -int(-(y1 + grow_y) // a) * a))
        if (box[2] - box[0]) * (box[3] - box[1]) > self.max_area * height * width:
            return None
        return box

    def __call__(self, encode: Callable[[Tensor], Tensor], inputs: Tensor,
                 state: Optional[RegionState], masks: Optional[Tensor]) -> Tuple[Tensor, RegionState]:
        """One frame's features.

        Args:
            encode: the encoder, images ``[1, 3, H', W']`` -> features ``[1, C, H'/s, W'/s]``.
            inputs: the preprocessed frame ``[1, 3, H, W]`` (H, W multiples of ``align``).
            state: the video's state from the previous frame, or None (first frame).
            masks: the tracked objects' latest mask logits ``[K, h, w]``, or None (no object yet,
                or a frame with new prompts: computed in full, since a prompt may be anywhere).

        Returns:
            The frame's features and the video's new state.
        """
        if inputs.dim() != 4 or inputs.shape[0] != 1:
            raise ValueError(f'RegionalFeatures: inputs must be one frame [1, 3, H, W], got '
                             f'{tuple(inputs.shape)}')
        height, width = inputs.shape[-2:]
        if height % self.align or width % self.align:
            raise ValueError(f'RegionalFeatures: the frame {height}x{width} must be padded to a '
                             f'multiple of align={self.align}')
        box = None
        # a new frame size (the kept map is another grid) is computed in full
        if (state is not None and masks is not None and state.age + 1 < self.refresh_period
                and state.image_hw == (height, width)):
            box = self.crop_box(masks, (height, width))
        if box is None:
            feat = encode(inputs)
            if height % feat.shape[-2] or width % feat.shape[-1]:
                raise ValueError(f'RegionalFeatures: the encoder maps {height}x{width} to '
                                 f'{tuple(feat.shape[-2:])}, not an integer stride')
            return feat, RegionState(feat, (height, width))
        stride = height // state.feat.shape[-2]
        x0, y0, x1, y1 = box
        crop_feat = encode(inputs[..., y0:y1, x0:x1])
        # paste the interior: the halo is context, except where the crop meets the image border
        halo = -(-self.halo // stride) * stride
        px0, py0 = (x0 + halo if x0 > 0 else 0), (y0 + halo if y0 > 0 else 0)
        px1, py1 = (x1 - halo if x1 < width else width), (y1 - halo if y1 < height else height)
        feat = state.feat.clone()
        if px1 > px0 and py1 > py0:
            feat[..., py0 // stride:py1 // stride, px0 // stride:px1 // stride] = crop_feat[
                ..., (py0 - y0) // stride:(py1 - y0) // stride, (px0 - x0) // stride:(px1 - x0) // stride]
        return feat, RegionState(feat, (height, width), state.age + 1,
                                 (x1 - x0) * (y1 - y0) / (height * width))
