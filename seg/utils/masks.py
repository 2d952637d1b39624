"""Mask helpers shared by the datasets, the evaluation and the APIs (one home each): the tight
box of a mask, COCO panoptic RGB <-> segment ids, and reading DAVIS-style index PNGs."""
import io
from pathlib import Path
from typing import Optional, Union

import numpy as np
from mmengine.fileio import get
from PIL import Image, UnidentifiedImageError

PANOPTIC_ID_LIMIT = 256 ** 3  # ids are 24-bit: R + 256 G + 256² B


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """Tight ``xyxy`` float32 box of a non-empty binary ``[H, W]`` mask, right/bottom edge
    exclusive (COCO's ``x2 = x1 + width``)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'mask_to_box needs an [H, W] mask, got shape {mask.shape}')
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        raise ValueError(f'mask_to_box: the {mask.shape[0]}x{mask.shape[1]} mask is empty')
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)


def rgb2id(rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] RGB COCO panoptic image -> [H, W] int64 segment ids (``R + 256 G + 256² B``)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'rgb2id needs an [H, W, 3] array, got shape {rgb.shape}')
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """[H, W] segment ids (< 256³) -> [H, W, 3] uint8 RGB COCO panoptic image."""
    ids = np.asarray(ids).astype(np.int64)
    if ids.min(initial=0) < 0 or ids.max(initial=0) >= PANOPTIC_ID_LIMIT:
        raise ValueError(f'panoptic segment ids must be in 0..{PANOPTIC_ID_LIMIT - 1}, got '
                         f'{ids.min()}..{ids.max()}')
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


def read_davis_png(path: Union[str, Path], backend_args: Optional[dict] = None) -> np.ndarray:
    """A single-channel (palette or L) DAVIS PNG as its [H, W] int64 index array (object ids,
    255 void in DAVIS 2017; 0/255 in DAVIS 2016's binary masks). Any mmengine file backend."""
    try:
        data = get(str(path), backend_args=backend_args)
    except FileNotFoundError as e:
        raise FileNotFoundError(f'DAVIS mask not found: {path}') from e
    try:
        with Image.open(io.BytesIO(data)) as im:
            arr = np.array(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:  # PIL: not an image / truncated
        raise ValueError(f'{path}: DAVIS mask cannot be decoded as a PNG ({e})') from None
    if arr.ndim != 2:
        raise ValueError(f'{path}: DAVIS masks are single-channel (palette or L) PNGs of object '
                         f'ids, got an array of shape {arr.shape}')
    return arr.astype(np.int64)
