"""VideoSegDataPreprocessor takes clip batches and, for alternating image / clip training, image
batches too (exactly as SegDataPreprocessor with the same settings)."""
import copy

import torch

import seg  # noqa: F401
from seg.registry import MODELS
from tests.test_models.tiny_cases.detectors import packed_clip, packed_image

SETTINGS = dict(mean=[120.0, 110.0, 100.0], std=[60.0, 55.0, 50.0], bgr_to_rgb=True,
                pad_size_divisor=32, pad_mask=True, pad_seg=True, resize_longest_side=96)


def test_image_batches_match_the_image_preprocessor():
    video = MODELS.build(dict(type='VideoSegDataPreprocessor', **SETTINGS))
    image = MODELS.build(dict(type='SegDataPreprocessor', **SETTINGS))
    batch = dict(inputs=[packed_image()['inputs'], packed_image(h=40)['inputs']],
                 data_samples=[packed_image()['data_samples'], packed_image(h=40)['data_samples']])
    a = video(copy.deepcopy(batch), True)
    b = image(copy.deepcopy(batch), True)
    assert a['inputs'].shape == b['inputs'].shape == (2, 3, 96, 96)
    assert torch.equal(a['inputs'], b['inputs'])
    assert a['data_samples'][0].prompts.points.equal(b['data_samples'][0].prompts.points)
    assert not any(k.startswith('image_preprocessor') for k in video.state_dict())
    clip = packed_clip()
    out = video(dict(inputs=[clip['inputs']], data_samples=[clip['data_samples']]), True)
    assert out['inputs'].dim() == 5
