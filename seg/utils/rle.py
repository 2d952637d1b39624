"""COCO run-length encoding of binary masks, ready for JSON (pycocotools does the encoding)."""
from typing import Any, Dict

import numpy as np
from pycocotools import mask as mask_utils


def mask_to_rle(mask: np.ndarray) -> Dict[str, Any]:
    """A binary mask ``[H, W]`` -> COCO compressed RLE with ``counts`` as text (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle
