"""YouTubeVIS2019Metric (mmdet's YouTube-VIS mAP) on a tiny synthetic video."""
import json
import zipfile

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from mmdet.evaluation.functional import ytviseval
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from seg.registry import METRICS

H, W, N_FRAMES = 20, 30, 3


def _masks(frame_id):
    a = np.zeros((H, W), np.uint8)
    a[2:10, 3 + frame_id:12 + frame_id] = 1  # moves right
    b = np.zeros((H, W), np.uint8)
    b[12:18, 15:25] = 1
    return a, b


def _video(video_id=1, predict_second=True):
    frames = []
    for t in range(N_FRAMES):
        a, b = _masks(t)
        instances = [dict(bbox_label=0, bbox=[3 + t, 2, 12 + t, 10], instance_id=10 * video_id + 1,
                          mask=mask_utils.encode(np.asfortranarray(a))),
                     dict(bbox_label=0, bbox=[15, 12, 25, 18], instance_id=10 * video_id + 2,
                          mask=mask_utils.encode(np.asfortranarray(b)))]
        frame = DetDataSample(metainfo=dict(img_id=100 * video_id + t, video_id=video_id,
                                            frame_id=t, ori_shape=(H, W),
                                            ori_video_length=N_FRAMES, instances=instances))
        masks = [a, b] if predict_second else [a]
        frame.pred_track_instances = InstanceData(
            masks=torch.from_numpy(np.stack(masks)).bool(), bboxes=torch.zeros(len(masks), 4),
            scores=torch.tensor([0.9, 0.8][:len(masks)]),
            labels=torch.zeros(len(masks), dtype=torch.long),
            instances_id=torch.arange(len(masks)))
        frames.append(frame)
    video = TrackDataSample()
    video.video_data_samples = frames
    return video


def _metric(**kwargs):
    metric = METRICS.build(dict(type='YouTubeVIS2019Metric', metric_items=['mAP', 'mAP_50'],
                                **kwargs))
    metric.dataset_meta = {'classes': ('thing', )}
    return metric


def test_map_hand_computed_and_repeated_evaluation():
    evaluator = Evaluator([_metric()])
    evaluator.process([_video()])
    assert evaluator.evaluate(1) == {'youtube_vis/segm_mAP': 1.0, 'youtube_vis/segm_mAP_50': 1.0}
    # Second evaluation (mmdet's own metric fails here): one of the two GT tracks is predicted
    # perfectly, the other missed -> precision 1 up to recall 0.5, i.e. 51 of the 101 recall
    # thresholds, at every IoU threshold: 51 / 101 = 0.505.
    evaluator.process([_video(predict_second=False)])
    assert evaluator.evaluate(1) == {'youtube_vis/segm_mAP': 0.505,
                                     'youtube_vis/segm_mAP_50': 0.505}
    assert ytviseval.np is np  # the np.float alias was only lent to mmdet during evaluation


def test_format_only_writes_the_server_submission(tmp_path):
    with pytest.raises(ValueError, match='outfile_prefix'):
        _metric(format_only=True)
    evaluator = Evaluator([_metric(format_only=True, outfile_prefix=str(tmp_path / 'vis'))])
    evaluator.process([_video()])
    assert evaluator.evaluate(1) == {}
    results = json.loads((tmp_path / 'vis.json').read_text())
    with zipfile.ZipFile(tmp_path / 'vis.submission_file.zip') as zf:
        assert zf.namelist() == ['results.json']
        assert json.loads(zf.read('results.json')) == results
    assert len(results) == 2 and {r['video_id'] for r in results} == {1}
    assert all(len(r['segmentations']) == N_FRAMES and r['category_id'] == 1 for r in results)
    assert results[0]['score'] == pytest.approx(0.9)
