"""Shared cases of the video predictor tests: the tiny model with random weights, and frames
with a bright square moving right."""
import numpy as np
import pytest

from seg.apis import FastSAM2VideoPredictor
from tests.conftest import REPO_ROOT

TINY_CFG = str(REPO_ROOT / 'configs/fastsam2/model_fastsam2_tiny.py')
H, W, T = 96, 128, 8


def tiny_video_predictor() -> FastSAM2VideoPredictor:
    """Masks as SAM2's logits: ``NO_OBJ_SCORE`` tells an object without a mask on a frame."""
    with pytest.warns(UserWarning, match='RANDOM weights'):
        return FastSAM2VideoPredictor.from_config(TINY_CFG, image_size=128, return_logits=True)


def moving_square_frames(seed: int, n: int = T, h: int = H, w: int = W) -> list:
    """Textured frames with a bright square moving right by 3 px per frame."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    frames = []
    for t in range(n):
        f = base.copy()
        f[h // 4:h // 2, 10 + 3 * t:40 + 3 * t] = (230, 200, 40)
        frames.append(f)
    return frames
