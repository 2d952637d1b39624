"""DAVIS ``test_mode`` on the test-dev layout: only the first frame of each sequence annotated."""
import numpy as np
import pytest
from PIL import Image

from seg.datasets import DAVISDataset
from seg.datasets.transforms import (
    FirstFrameMaskPrompts,
    LoadVideoFrameAnnotations,
    PackSegTrackInputs,
    SampleVideoClip,
)

PIPELINE = [
    dict(type=SampleVideoClip, clip_length=None),
    dict(type='TransformBroadcaster', share_random_params=True,
         transforms=[dict(type='LoadImageFromFile'), dict(type=LoadVideoFrameAnnotations)]),
    dict(type=FirstFrameMaskPrompts),
    dict(type=PackSegTrackInputs),
]


@pytest.fixture(scope='module')
def test_dev_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('davis_test_dev')
    for seq in ('bike', 'cat'):
        (root / 'JPEGImages/480p' / seq).mkdir(parents=True)
        (root / 'Annotations/480p' / seq).mkdir(parents=True)
        for t in range(3):
            Image.fromarray(np.full((24, 32, 3), 60 * t, np.uint8)).save(
                root / f'JPEGImages/480p/{seq}/{t:05d}.jpg')
        ids = np.zeros((24, 32), np.uint8)
        ids[4:12, 4:20], ids[16:20, 2:8] = 1, 2
        png = Image.fromarray(ids, 'P')
        png.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
        png.save(root / f'Annotations/480p/{seq}/00000.png')
    return root


def test_test_mode_loads_every_sequence_with_first_frame_prompts(test_dev_root):
    ds = DAVISDataset(data_root=str(test_dev_root), split=None, test_mode=True, pipeline=PIPELINE)
    assert len(ds) == 2
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        frames = sample.video_data_samples
        assert len(frames) == 3
        assert sorted(frames[0].gt_instances.instances_ids.tolist()) == [1, 2]
        assert len(frames[1].gt_instances) == 0 and len(frames[2].gt_instances) == 0
        assert len(frames[0].prompts) == 2  # the first-frame masks are the VOS reference


def test_training_mode_still_needs_every_annotation(test_dev_root):
    with pytest.raises(FileNotFoundError, match=r'DAVIS annotation not found: .*00001\.png'):
        DAVISDataset(data_root=str(test_dev_root), split=None, pipeline=PIPELINE)
