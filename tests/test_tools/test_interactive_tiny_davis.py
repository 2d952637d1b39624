"""``configs/fastsam2/interactive_tiny_davis.py``: its training samples are single DAVIS frames at
the server's processing size whose prompts are drawn from the frame's ground-truth mask."""
import numpy as np
import pytest
from mmengine.config import Config

from seg.registry import DATASETS
from tests.conftest import REPO_ROOT

from .test_vos_baselines import write_square_davis2016

CONFIG = REPO_ROOT / 'configs/fastsam2/interactive_tiny_davis.py'


@pytest.fixture(scope='module')
def cfg() -> Config:
    return Config.fromfile(str(CONFIG))


def test_held_out_sequences_are_not_trained_on(cfg):
    train = set(cfg.train_dataloader.dataset.sequences)
    assert train and not train & set(cfg.test_sequences)
    assert train | set(cfg.test_sequences) == set(cfg.all_sequences)


def test_samples_are_one_frame_prompted_inside_its_object(cfg, tmp_path):
    write_square_davis2016(tmp_path, {'right': (3, 0), 'down': (0, 3)}, num_frames=4)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.update(data_root=str(tmp_path), sequences=None)
    dataset = DATASETS.build(dataset_cfg)
    np.random.seed(0)
    prompted = 0
    for i in range(8):
        sample = dataset[i % len(dataset)]
        frames = sample['data_samples'].video_data_samples
        assert len(frames) == 1 and sample['inputs'].shape[0] == 1
        assert max(sample['inputs'].shape[-2:]) <= cfg.processing_size
        frame = frames[0]
        mask = frame.gt_instances.masks.to_ndarray()
        if not mask.any():  # the random crop may cut the object away: no prompt then
            continue
        prompts = frame.prompts
        assert len(prompts) == 1 and prompts.gt_ids.tolist() == [0]
        positive = prompts.points[0][prompts.point_labels[0] == 1].long()
        assert len(positive) >= 1
        # clicks are pixel coordinates (x, y) of the packed frame, on the object
        assert mask[0][positive[:, 1], positive[:, 0]].all()
        negative = prompts.points[0][prompts.point_labels[0] == 0].long()
        assert not mask[0][negative[:, 1], negative[:, 0]].any()
        prompted += 1
    assert prompted >= 4
