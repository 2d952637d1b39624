import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from seg.models.data_preprocessor import SegDataPreprocessor, VideoSegDataPreprocessor
from seg.structures import build_prompts


def _sample(h, w, with_gt=False):
    s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0)))
    p = build_prompts(points=[[[10.0, 20.0], [30.0, 5.0]]], point_labels=[[1, 0]],
                      bboxes=[[4.0, 8.0, 40.0, 30.0]])
    m = torch.zeros(1, h, w)
    m[0, :h // 2, :w // 2] = 1
    p.masks = m
    s.prompts = p
    if with_gt:
        mask = np.zeros((1, h, w), np.uint8)
        mask[0, 10:20, 10:30] = 1
        s.gt_instances = InstanceData(bboxes=torch.tensor([[10.0, 10.0, 30.0, 20.0]]),
                                      labels=torch.tensor([0]), masks=BitmapMasks(mask, h, w))
    return s


def test_resize_scales_prompts_and_padding_keeps_them():
    pre = SegDataPreprocessor(resize_longest_side=128, pad_size_divisor=32, mean=[0, 0, 0], std=[1, 1, 1])
    img = torch.randint(0, 255, (3, 50, 100), dtype=torch.uint8)
    out = pre(dict(inputs=[img], data_samples=[_sample(50, 100)]))
    s = out['data_samples'][0]
    assert out['inputs'].shape == (1, 3, 64, 128)  # 50x100 -> 64x128 (already a multiple of 32)
    assert s.img_shape == (64, 128)
    sx, sy = 128 / 100, 64 / 50
    assert s.scale_factor == pytest.approx((sx, sy))
    assert torch.allclose(s.prompts.points[0], torch.tensor([[10 * sx, 20 * sy], [30 * sx, 5 * sy]]))
    assert torch.allclose(s.prompts.bboxes[0], torch.tensor([4 * sx, 8 * sy, 40 * sx, 30 * sy]))
    assert s.prompts.masks.shape == (1, 64, 128)
    # the mask prompt's top-left quadrant stays the top-left quadrant
    assert s.prompts.masks[0, :30, :62].min() > 0.5 and s.prompts.masks[0, 34:, 66:].max() < 0.5


def test_padding_only_does_not_move_prompts_and_pads_mask_prompt():
    pre = SegDataPreprocessor(pad_size_divisor=32)
    img = torch.randint(0, 255, (3, 50, 70), dtype=torch.uint8)
    sample = _sample(50, 70)
    points = sample.prompts.points.clone()
    out = pre(dict(inputs=[img], data_samples=[sample]))
    s = out['data_samples'][0]
    assert out['inputs'].shape == (1, 3, 64, 96)
    assert torch.equal(s.prompts.points, points)
    assert s.prompts.masks.shape == (1, 64, 96) and s.prompts.masks[0, 50:].sum() == 0


@pytest.mark.parametrize('box_objects', [False, True])
def test_resize_scales_ground_truth_too(box_objects):
    pre = SegDataPreprocessor(resize_longest_side=200, pad_size_divisor=32, pad_mask=True)
    img = torch.randint(0, 255, (3, 50, 100), dtype=torch.uint8)
    sample = _sample(50, 100, with_gt=True)
    if box_objects:  # as the pipeline packs them (boxtype2tensor runs later)
        sample.gt_instances.bboxes = HorizontalBoxes(sample.gt_instances.bboxes)
    out = pre(dict(inputs=[img], data_samples=[sample]), training=True)
    gt = out['data_samples'][0].gt_instances
    assert torch.allclose(gt.bboxes, torch.tensor([[20.0, 20.0, 60.0, 40.0]]))
    m = gt.masks.to_ndarray()[0]
    assert m.shape == (128, 224)  # padded to the batch input
    assert m[20:40, 20:60].all() and m.sum() == 20 * 40
    # at test time the GT stays in the original frame, where metrics use it
    sample = _sample(50, 100, with_gt=True)
    out = pre(dict(inputs=[img], data_samples=[sample]), training=False)
    assert out['data_samples'][0].gt_instances.masks.to_ndarray().shape == (1, 50, 100)


def test_video_preprocessor_resizes_every_frame():
    pre = VideoSegDataPreprocessor(resize_longest_side=64, pad_size_divisor=32)
    clip = torch.randint(0, 255, (3, 3, 40, 80), dtype=torch.uint8)
    track = TrackDataSample()
    track.video_data_samples = [_sample(40, 80) for _ in range(3)]
    out = pre(dict(inputs=[clip], data_samples=[track]))
    assert out['inputs'].shape == (1, 3, 3, 32, 64)
    for frame in out['data_samples'][0]:
        assert frame.img_shape == (32, 64)
        assert torch.allclose(frame.prompts.points[0, 0], torch.tensor([8.0, 16.0]))


def test_test_size_applies_to_inference_batches_only():
    pre = VideoSegDataPreprocessor(resize_longest_side=64, test_resize_longest_side=128,
                                   pad_size_divisor=32)
    for training, want in ((True, (32, 64)), (False, (64, 128))):
        clip = torch.randint(0, 255, (2, 3, 40, 80), dtype=torch.uint8)
        track = TrackDataSample()
        track.video_data_samples = [_sample(40, 80) for _ in range(2)]
        out = pre(dict(inputs=[clip], data_samples=[track]), training)
        assert out['inputs'].shape[-2:] == want
        # images go through the same sizes (the preprocessor's image path)
        out = pre(dict(inputs=[clip[0]], data_samples=[_sample(40, 80)]), training)
        assert out['inputs'].shape[-2:] == want


def test_bad_resize_value():
    with pytest.raises(ValueError, match='resize_longest_side'):
        SegDataPreprocessor(resize_longest_side=0)
    with pytest.raises(ValueError, match='test_resize_longest_side'):
        SegDataPreprocessor(resize_longest_side=64, test_resize_longest_side=-1)
