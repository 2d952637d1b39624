"""COCO run-length encoding of binary masks, ready for JSON (pycocotools does the encoding)."""
from typing import Any, Dict

import numpy as np
from pycocotools import mask as mask_utils


def mask_to_rle(mask: np.ndarray) -> Dict[str, Any]:
    """A binary mask ``[H, W]`` -> COCO compressed RLE with ``counts`` as text (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def mask_record(mask: np.ndarray) -> Dict[str, Any]:
    """A binary mask ``[H, W]`` -> ``{'segmentation': RLE, 'area', 'bbox'}`` (COCO: bbox is
    x, y, w, h), the per-object record of the demo's and the server's JSON outputs."""
    rle = mask_to_rle(mask)
    return dict(segmentation=rle, area=int(mask_utils.area(rle)),
                bbox=[float(v) for v in mask_utils.toBbox(rle)])
