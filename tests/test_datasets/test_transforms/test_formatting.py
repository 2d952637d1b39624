"""PackSegInputs / PackSegTrackInputs: prompts and void maps reach the data samples."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from seg.datasets.transforms.formatting import PackSegInputs, PackSegTrackInputs
from seg.structures.prompts import build_prompts


def _frame(h=6, w=8, n=2, seed=0):
    rng = np.random.default_rng(seed)
    masks = (rng.random((n, h, w)) > 0.5).astype(np.uint8)
    return dict(img=rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
                gt_bboxes=HorizontalBoxes(torch.tensor([[0., 0., 4., 4.]] * n)),
                gt_bboxes_labels=np.arange(n), gt_masks=BitmapMasks(masks, h, w),
                gt_instances_ids=np.arange(n) + 10, gt_ignore_flags=np.zeros(n, bool))


def test_pack_seg_inputs_moves_prompts():
    res = _frame()
    res.update(img_id=0, img_path='a.jpg', ori_shape=(6, 8), img_shape=(6, 8), scale_factor=(1., 1.),
               flip=False, flip_direction=None,
               prompts=build_prompts(points=[[[1, 2]]], point_labels=[[1]], gt_ids=[1]))
    out = PackSegInputs()(res)
    sample = out['data_samples']
    assert isinstance(sample, DetDataSample)
    assert sample.prompts.points.tolist() == [[[1., 2.]]] and sample.prompts.gt_ids.tolist() == [1]
    assert out['inputs'].shape == (3, 6, 8)
    assert 'prompts' not in PackSegInputs()({k: v for k, v in res.items() if k != 'prompts'})[
        'data_samples']


def test_pack_seg_track_inputs_frames_prompts_and_void():
    frames = [_frame(seed=0), _frame(seed=1)]
    res = {k: [f[k] for f in frames] for k in frames[0]}
    void = [np.zeros((6, 8), np.uint8), np.zeros((6, 8), np.uint8)]
    void[1][2, 3] = 255
    res.update(img_id=[0, 1], img_path=['v/0.jpg', 'v/1.jpg'], frame_id=[0, 1],
               ori_shape=[(6, 8)] * 2, img_shape=[(6, 8)] * 2, video_length=[2, 2],
               gt_seg_map=void,
               prompts=[build_prompts(bboxes=[[0, 0, 2, 2]], gt_ids=[0]), None])
    out = PackSegTrackInputs()(res)
    track = out['data_samples']
    assert isinstance(track, TrackDataSample) and out['inputs'].shape == (2, 3, 6, 8)
    f0, f1 = track.video_data_samples
    assert f0.prompts.bboxes.tolist() == [[0., 0., 2., 2.]] and 'prompts' not in f1
    assert f1.ignore_mask.data.dtype == torch.bool and f1.ignore_mask.data.shape == (1, 6, 8)
    assert f1.ignore_mask.data.sum() == 1 and f1.ignore_mask.data[0, 2, 3]
    assert not f0.ignore_mask.data.any()
    assert f1.gt_instances.instances_ids.tolist() == [10, 11]
    assert f1.frame_id == 1 and f1.video_length == 2 and f1.img_path == 'v/1.jpg'


def test_pack_seg_track_inputs_rejects_wrong_lengths():
    frames = [_frame(seed=0), _frame(seed=1)]
    res = {k: [f[k] for f in frames] for k in frames[0]}
    res.update(img_id=[0, 1], prompts=[None])
    with pytest.raises(ValueError, match='1 prompt entries for 2 frames'):
        PackSegTrackInputs()(res)
