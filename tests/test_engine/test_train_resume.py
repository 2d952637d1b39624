"""One mmengine Runner iteration of the tiny RapSAM on a generated COCO-panoptic dataset, then
checkpoint -> resume, checking that iteration, optimizer state and weights come back identical;
and a resumed toy training that equals the uninterrupted one bit for bit."""
import copy
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import seg  # noqa: F401
from seg.engine.fastsam2_stages import prepare_config
from seg.utils.masks import id2rgb
from tests.conftest import REPO_ROOT
from tests.test_engine.toy_workspace import TOY_STAGES, launcher_args, toy_workspace

TINY_CFG = REPO_ROOT / 'configs/rapsam/rapsam_tiny_coco_panoptic.py'


def write_tiny_coco_panoptic(root: Path, categories: list, num_images: int = 2, size: int = 64) -> None:
    """A few synthetic images with two thing instances and one stuff segment, COCO panoptic format."""
    rng = np.random.default_rng(0)
    (root / 'images').mkdir(parents=True)
    (root / 'panoptic').mkdir()
    things = [c for c in categories if c['isthing']][:2]
    stuff = [c for c in categories if not c['isthing']][0]
    images, annotations = [], []
    for i in range(num_images):
        img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        pan = np.zeros((size, size), np.int64)
        segments = []
        regions = [(slice(0, size // 2), slice(0, size // 2)),
                   (slice(size // 2, size), slice(size // 3, size)),
                   (slice(0, size // 2), slice(size // 2, size))]
        for k, (cat, region) in enumerate(zip(things + [stuff], regions)):
            seg_id = 1000 * (i + 1) + k + 1
            pan[region] = seg_id
            img[region] = (40 * (k + 1), 255 - 60 * k, 30 * k)
            ys, xs = np.nonzero(pan == seg_id)
            segments.append(dict(id=seg_id, category_id=cat['id'], iscrowd=0, area=int(len(ys)),
                                 bbox=[int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                                       int(ys.max() - ys.min() + 1)]))
        name = f'{i:012d}'
        cv2.imwrite(str(root / 'images' / f'{name}.jpg'), img)
        rgb = id2rgb(pan)
        cv2.imwrite(str(root / 'panoptic' / f'{name}.png'), rgb[..., ::-1])
        images.append(dict(id=i + 1, file_name=f'{name}.jpg', height=size, width=size))
        annotations.append(dict(image_id=i + 1, file_name=f'{name}.png', segments_info=segments))
    (root / 'panoptic.json').write_text(json.dumps(
        dict(images=images, annotations=annotations, categories=categories)))


def tiny_train_cfg(data_root: Path, work_dir: Path) -> Config:
    cfg = Config.fromfile(str(TINY_CFG))
    ds = cfg.train_dataloader.dataset
    ds.update(data_root=str(data_root), ann_file='panoptic.json',
              data_prefix=dict(img='images/', seg='panoptic/'), filter_cfg=None)
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_cfg.update(max_iters=1, val_interval=1000)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.default_hooks.checkpoint.update(interval=1)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.pop('visualization')
    cfg.param_scheduler = None
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=0)
    return cfg


@pytest.fixture(scope='module')
def tiny_dataset(tmp_path_factory, shared_data) -> Path:
    root = tmp_path_factory.mktemp('tiny_coco_panoptic')
    categories = json.loads((shared_data / 'coco_panoptic_sample/panoptic_coco_categories.json').read_text())
    write_tiny_coco_panoptic(root, categories)
    return root


def test_train_one_iter_then_resume_exactly(tiny_dataset, tmp_path):
    cfg = tiny_train_cfg(tiny_dataset, tmp_path / 'work')
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()
    assert runner.iter == 1
    ckpt = tmp_path / 'work' / 'iter_1.pth'
    assert ckpt.is_file()
    weights = {k: v.clone() for k, v in runner.model.state_dict().items()}
    changed = [k for k in weights if not torch.equal(weights[k], before[k])]
    assert changed, 'one training iteration changed no weight'
    optim_state = copy.deepcopy(runner.optim_wrapper.state_dict())
    loss_history = runner.message_hub.log_scalars['train/loss'].data[0].copy()

    # resume with the same schedule length: nothing left to train, state must be the checkpoint's
    cfg2 = copy.deepcopy(cfg)
    cfg2.update(resume=True, load_from=str(ckpt), work_dir=str(tmp_path / 'work2'))
    resumed = Runner.from_cfg(cfg2)
    resumed.train()
    assert resumed.iter == 1
    for k, v in resumed.model.state_dict().items():
        assert torch.equal(v, weights[k]), f'weight {k} differs after resume'
    state2 = resumed.optim_wrapper.state_dict()
    assert state2['param_groups'] == optim_state['param_groups']
    assert state2['state'].keys() == optim_state['state'].keys() and state2['state']
    for pid, s in optim_state['state'].items():
        for key, val in s.items():
            assert torch.equal(torch.as_tensor(val), torch.as_tensor(state2['state'][pid][key])), \
                f'optimizer state {pid}.{key} differs after resume'
    # the message hub's HistoryBuffers (what weights_only loading used to reject) came back intact
    assert (resumed.message_hub.log_scalars['train/loss'].data[0] == loss_history).all()


def test_resumed_toy_training_equals_the_uninterrupted_one(tmp_path_factory, tmp_path, monkeypatch):
    """Toy stage 3 (random clips and augmentation, a clip-length curriculum that changes at
    iteration 1, dataloader epochs of 3 batches): 4 iterations with a checkpoint at 2, against a
    resume from that checkpoint, as if killed right after writing it, by ``--resume auto`` in a
    work dir whose ``last_checkpoint`` is empty and which holds the temporary file of an
    interrupted write. Weights and every logged loss are equal bit for bit."""
    monkeypatch.chdir(toy_workspace(tmp_path_factory))
    options = ['--cfg-options', 'load_from=None', 'train_cfg.max_iters=4', 'randomness.seed=0',
               'default_hooks.checkpoint.interval=2', 'default_hooks.checkpoint.max_keep_ckpts=5',
               'default_hooks.logger.interval=1', 'custom_hooks.0.schedule=[[0,[2,3]],[1,[3,4]]]']

    def train(work_dir, *flags):
        runner = Runner.from_cfg(prepare_config(launcher_args(
            [TOY_STAGES[3], '--stage', 3, '--work-dir', work_dir, *flags, *options])))
        runner.train()
        return runner

    full = train(tmp_path / 'full')
    killed = tmp_path / 'killed'
    killed.mkdir()
    shutil.copy(tmp_path / 'full' / 'iter_2.pth', killed)
    (killed / 'last_checkpoint').write_text('')
    orphan = killed / '.iter_3.pth.k1ll3d00.tmp'
    orphan.write_bytes(b'half a checkpoint')
    resumed = train(killed, '--resume', 'auto')

    assert resumed.iter == full.iter == 4 and not orphan.exists()
    weights, expected = resumed.model.state_dict(), full.model.state_dict()
    assert [k for k in expected if not torch.equal(weights[k], expected[k])] == []
    logged = [k for k in full.message_hub.log_scalars if 'loss' in k or k == 'train/grad_norm']
    assert 'train/loss_dpsr_mask' in logged
    for key in logged:
        a = full.message_hub.log_scalars[key].data[0]
        b = resumed.message_hub.log_scalars[key].data[0]
        assert len(a) == 4 and np.array_equal(a, b), f'{key}: {a} != {b}'
