"""DAVIS folders -> index file -> DAVISDataset gives the same samples as scanning the folders."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from seg.datasets.converters.davis_index import davis_to_index
from seg.registry import DATASETS

PIPE = [dict(type='SampleVideoClip', clip_length=None),
        dict(type='TransformBroadcaster', share_random_params=True,
             transforms=[dict(type='LoadImageFromFile'), dict(type='LoadVideoFrameAnnotations')]),
        dict(type='PackSegTrackInputs')]


def test_index_of_the_real_2017_sample(shared_data, tmp_path):
    root = shared_data / 'davis2017_sample'
    out = tmp_path / 'davis.json'
    summary = davis_to_index(str(root), str(out), year='2017', split=None)
    index = json.loads(out.read_text())
    assert summary['frames'] == 4 and index['format'] == 'fastsam2-davis-index'
    tennis = index['data_list'][1]
    assert tennis['video_name'] == 'tennis'
    assert tennis['images'][0]['object_ids'] == [1, 2]
    raw = np.array(Image.open(root / 'Annotations' / '480p' / 'tennis' / '00000.png'))
    assert tennis['images'][0]['void_pixels'] == int((raw == 255).sum()) == 225
    assert tennis['images'][0]['img_path'] == 'JPEGImages/480p/tennis/00000.jpg'
    scanned = DATASETS.build(dict(type='DAVISDataset', data_root=str(root), split=None,
                                  pipeline=PIPE))
    indexed = DATASETS.build(dict(type='DAVISDataset', data_root=str(root), split=None,
                                  ann_file=str(out), pipeline=PIPE))
    for i in range(2):
        for a, b in zip(scanned[i]['data_samples'].video_data_samples,
                        indexed[i]['data_samples'].video_data_samples):
            assert a.img_path == b.img_path
            assert np.array_equal(a.gt_instances.masks.masks, b.gt_instances.masks.masks)
            assert a.gt_instances.instances_ids.tolist() == b.gt_instances.instances_ids.tolist()


def test_index_of_davis2016_counts_every_frame(shared_data, tmp_path):
    summary = davis_to_index(str(shared_data / 'davis2016'), str(tmp_path / 'd.json'), year='2016',
                             split=None)
    index = json.loads((tmp_path / 'd.json').read_text())
    assert summary['videos'] == 10 and summary['frames'] == 775
    assert all(f['object_ids'] in ([1], []) for v in index['data_list'] for f in v['images'])


def test_broken_mask_fails_at_index_time(toy, tmp_path):
    root = tmp_path / 'd'
    shutil.copytree(toy.davis_root, root)
    png = root / 'Annotations' / '480p' / 'toy-seq1' / '00002.png'
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(png)  # RGB: not a DAVIS mask
    with pytest.raises(ValueError, match=r'toy-seq1/00002\.png: DAVIS masks are single-channel'):
        davis_to_index(str(root), str(tmp_path / 'i.json'), split='train')
    bad = json.dumps(dict(format='fastsam2-davis-index', version=99, data_list=[]))
    (tmp_path / 'old.json').write_text(bad)
    with pytest.raises(ValueError, match='version 99'):
        DATASETS.build(dict(type='DAVISDataset', data_root=str(root), ann_file=str(tmp_path / 'old.json')))
