"""Field access on data samples as metrics receive them (dicts or data elements)."""
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks

from seg.evaluation.metrics.sample_fields import get_field, to_numpy


def test_get_field_reads_dicts_data_fields_and_metainfo():
    sample = DetDataSample(metainfo={'img_path': 'a/b.jpg'})
    sample.pred_score = torch.tensor(1.0)
    assert get_field(sample, 'img_path') == 'a/b.jpg'
    assert get_field(sample, 'pred_score').item() == 1.0
    assert get_field(sample.to_dict(), 'img_path') == 'a/b.jpg'
    assert get_field({}, 'missing', 3) == 3 and get_field(sample, 'missing') is None


def test_to_numpy_converts_masks_and_tensors():
    masks = BitmapMasks(np.ones((2, 3, 4), np.uint8), 3, 4)
    assert to_numpy(masks).shape == (2, 3, 4)
    assert to_numpy(torch.arange(3)).tolist() == [0, 1, 2]
    assert to_numpy([1, 2]).tolist() == [1, 2]
