"""DAVISMetric: TrackDataSample predictions -> DAVIS palette PNGs -> J&F from the GT on disk."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData
from PIL import Image

from seg.registry import METRICS

from ..test_davis import H, W, _tiny_root, _two_objects


def _video(frames_ids, shape=(H, W), root='/x'):
    """One TrackDataSample whose frame t predicts the objects of the id map frames_ids[t]."""
    frames = []
    for t, ids in enumerate(frames_ids):
        frame = DetDataSample(metainfo={'img_path': f'{root}/JPEGImages/480p/a/{t:05d}.jpg',
                                        'frame_id': t, 'ori_shape': shape})
        present = [k for k in (1, 2) if (ids == k).any()]
        masks = np.array([ids == k for k in present], dtype=bool).reshape(-1, *shape)
        frame.pred_instances = InstanceData(
            masks=torch.from_numpy(masks),
            instances_id=torch.tensor(present, dtype=torch.long))
        frames.append(frame)
    video = TrackDataSample()
    video.video_data_samples = frames
    return video


def test_metric_writes_palette_pngs_and_reproduces_the_hand_computed_numbers(tmp_path):
    root = _tiny_root(tmp_path, [_two_objects(), _two_objects(), _two_objects(void=True),
                                 _two_objects(), _two_objects()])
    covers_void = _two_objects()
    covers_void[3:5, 7] = 2
    only_one = _two_objects()
    only_one[only_one == 2] = 0
    preds = [_two_objects(), _two_objects(), covers_void, only_one, _two_objects()]
    metric = METRICS.build(dict(type='DAVISMetric', davis_root=str(root),
                                outfile_dir=str(tmp_path / 'res')))
    evaluator = Evaluator([metric])
    evaluator.process([_video(preds)])
    out = evaluator.evaluate(1)
    # Same numbers as tests/test_evaluation/test_davis.py::test_evaluate_davis_hand_computed.
    assert out['davis/J-Mean'] == pytest.approx((1 + 1.75 / 3) / 2)
    assert out['davis/F-Mean'] == pytest.approx((1 + 2 / 3) / 2)
    assert out['davis/J-Decay'] == pytest.approx(0.4375)
    assert set(out) == {f'davis/{k}' for k in ('J&F-Mean', 'J-Mean', 'J-Recall', 'J-Decay',
                                               'F-Mean', 'F-Recall', 'F-Decay')}
    written = sorted(p.name for p in (tmp_path / 'res' / 'a').iterdir())
    assert written == [f'{t:05d}.png' for t in range(5)]
    with Image.open(tmp_path / 'res' / 'a' / '00002.png') as im:
        assert im.mode == 'P'
        np.testing.assert_array_equal(np.array(im), covers_void)


def test_metric_rejects_masks_not_at_original_resolution(tmp_path):
    root = _tiny_root(tmp_path, [_two_objects()] * 3)
    metric = METRICS.build(dict(type='DAVISMetric', davis_root=str(root)))
    video = _video([np.zeros((H, W), np.uint8)] * 3)
    for frame in video.video_data_samples:
        frame.set_metainfo({'ori_shape': (H * 2, W * 2)})
        frame.pred_instances = InstanceData(masks=torch.ones(1, H, W, dtype=torch.bool),
                                            instances_id=torch.tensor([1]))
    with pytest.raises(ValueError, match='original resolution'):
        Evaluator([metric]).process([video])


def test_metric_without_davis_root_reads_the_gt_beside_the_frames(tmp_path):
    root = _tiny_root(tmp_path, [_two_objects()] * 4)
    only_one = _two_objects()
    only_one[only_one == 2] = 0
    metric = METRICS.build(dict(type='DAVISMetric', outfile_dir=str(tmp_path / 'res')))
    evaluator = Evaluator([metric])
    evaluator.process([_video([_two_objects(), only_one, only_one, _two_objects()], root=root)])
    out = evaluator.evaluate(1)
    assert out['davis/J-Mean'] == pytest.approx(0.5)  # object 1 perfect, object 2 missed
    # frames of two roots, or a path outside the DAVIS layout, need an explicit davis_root
    with pytest.raises(ValueError, match='two DAVIS roots'):
        Evaluator([metric]).process([_video([_two_objects()] * 2, root=tmp_path / 'other')])
    with pytest.raises(ValueError, match='cannot infer the DAVIS root'):
        video = _video([_two_objects()])
        video.video_data_samples[0].set_metainfo({'img_path': '/x/frames/00000.jpg'})
        Evaluator([METRICS.build(dict(type='DAVISMetric'))]).process([video])
