"""Tiny case for the frozen SAM2 teacher (a width-32 random SAM2 at 128x128)."""
import torch

from seg.models.teachers import TINY_SAM2_OVERRIDES
from seg.structures.prompts import build_prompts

from . import TinyCase


def _teach(m):
    prompts = [build_prompts(points=[[[10, 12]], [[30, 20], [5, 5]]], point_labels=[[1], [1, 0]],
                             bboxes=[[0, 0, 0, 0], [4, 6, 40, 30]], box_valid=[False, True]),
               build_prompts(masks=(torch.rand(1, 32, 48) > 0.5).float())]
    return m(torch.rand(2, 3, 32, 48) * 255, prompts, mask_size=(8, 12))


CASES = {
    'SAM2Teacher': TinyCase(
        dict(type='SAM2Teacher', image_size=128, overrides=TINY_SAM2_OVERRIDES, allow_random_init=True),
        _teach, frozen=True),
}
