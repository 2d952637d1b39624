"""DumpSegResults (tools/test.py --out): the records hold the predictions exactly, in pickle and JSON."""
import json
import pickle

import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData, PixelData
from pycocotools import mask as mask_utils

from seg.evaluation.metrics import DumpSegResults


def _image_sample(img_id: int) -> DetDataSample:
    sample = DetDataSample(metainfo=dict(img_path=f'/data/{img_id}.jpg', img_id=img_id, ori_shape=(6, 8)))
    masks = torch.zeros(2, 6, 8, dtype=torch.bool)
    masks[0, :3], masks[1, 3:, 4:] = True, True
    sample.pred_instances = InstanceData(masks=masks, scores=torch.tensor([0.9, 0.25]),
                                         labels=torch.tensor([3, 0]),
                                         bboxes=torch.tensor([[0., 0, 8, 3], [4, 3, 8, 6]]))
    pan = torch.full((1, 6, 8), 7)  # stuff label 7
    pan[0, :3] = 3 + 1000  # thing label 3, instance 1 (mmdet's INSTANCE_OFFSET = 1000)
    sample.pred_panoptic_seg = PixelData(sem_seg=pan)
    return sample


@pytest.mark.parametrize('suffix', ['.pkl', '.json'])
def test_records_hold_the_predictions(tmp_path, suffix):
    out = tmp_path / f'preds{suffix}'
    evaluator = Evaluator(DumpSegResults(out_file=str(out)))
    video = TrackDataSample()
    video.video_data_samples = [_image_sample(5)]
    evaluator.process([_image_sample(1), _image_sample(2), video])
    assert evaluator.evaluate(3) == {}
    records = json.loads(out.read_text()) if suffix == '.json' else pickle.loads(out.read_bytes())
    assert [r.get('img_id') for r in records[:2]] == [1, 2] and records[2]['frames'][0]['img_id'] == 5
    first = records[0]
    assert first['ori_shape'] == [6, 8]
    assert [i['score'] for i in first['instances']] == pytest.approx([0.9, 0.25])
    assert [i['label'] for i in first['instances']] == [3, 0]
    assert first['instances'][1]['bbox'] == [4, 3, 8, 6]
    decoded = mask_utils.decode(first['instances'][1]['mask'])
    assert decoded.sum() == 12 and decoded[3:, 4:].all()
    assert [(s['id'], s['label']) for s in first['panoptic']] == [(7, 7), (1003, 3)]
    assert mask_utils.decode(first['panoptic'][1]['mask'])[:3].all()


def test_bad_suffix_and_inconsistent_predictions_are_errors(tmp_path):
    with pytest.raises(ValueError, match=r'out_file must end with one of .*preds.txt'):
        DumpSegResults(out_file=str(tmp_path / 'preds.txt'))
    sample = _image_sample(1).to_dict()  # as the Evaluator hands it over
    sample['pred_instances']['scores'] = torch.tensor([0.5])  # one score for two masks
    metric = DumpSegResults(out_file=str(tmp_path / 'p.pkl'))
    with pytest.raises(ValueError, match='/data/1.jpg: 2 predicted masks but 1 pred_instances.score'):
        metric.process({}, [sample])
