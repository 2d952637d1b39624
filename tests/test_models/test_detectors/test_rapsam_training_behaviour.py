"""Behaviour of RapSAM's training signals on toy images (slower: tens of seconds each)."""
import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper

import seg  # noqa: F401
from seg.datasets.toy_dataset import PANOPTIC_METAINFO, make_toy_dataset
from seg.datasets.transforms import GeneratePrompts, LoadCocoPanopticAnnotations, PackSegInputs
from seg.registry import DATASETS, MODELS
from tests.test_models.tiny_cases.detectors import distilled_model_cfg


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp('toy'), parts=('coco', ), num_images=(8, 4),
                            image_size=(64, 64))


def _dataset(toy, split: str, seed=None):
    """The toy COCO split with prompts sampled from its segments (fixed by ``seed``)."""
    return DATASETS.build(dict(
        type='CocoPanopticSegDataset', data_root=str(toy.coco_root), metainfo=PANOPTIC_METAINFO,
        ann_file=f'annotations/panoptic_{split}.json',
        data_prefix=dict(img=f'{split}/', seg=f'annotations/panoptic_{split}/'),
        pipeline=[dict(type=LoadImageFromFile),
                  dict(type=LoadCocoPanopticAnnotations, with_bbox=True, with_mask=True, with_seg=True),
                  dict(type=GeneratePrompts, max_objects=4, num_thing_classes=3, text_prob=0.0,
                       seed=seed),
                  dict(type=PackSegInputs)]))


def test_distillation_from_a_fixed_random_teacher_aligns_features_and_masks(toy):
    """Training the tiny FastSAM2 on the distillation losses against a fixed random tiny SAM2
    raises, on held-out images, the feature cosine and the student-teacher mask IoU."""
    torch.manual_seed(0)
    np.random.seed(0)  # the training prompts are drawn from numpy's global generator
    cfg = distilled_model_cfg()
    cfg.class_names = PANOPTIC_METAINFO['classes']
    cfg.panoptic_head.update(num_things_classes=3, num_stuff_classes=2)
    cfg.train_cfg = dict(interactive_rounds=None)
    model = MODELS.build(cfg)
    train, val = _dataset(toy, 'train2017'), _dataset(toy, 'val2017', seed=0)

    def agreement() -> np.ndarray:
        model.eval()
        values = []
        with torch.no_grad():
            for i in range(len(val)):
                data = model.data_preprocessor(pseudo_collate([val[i]]), True)
                losses = model.loss(data['inputs'], data['data_samples'])
                values.append([float(losses['distill_cos']), float(losses['distill_mask_iou'])])
        model.train()
        return np.mean(values, 0)

    before = agreement()
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), 1e-3))
    rng = np.random.default_rng(0)
    for _ in range(60):
        batch = pseudo_collate([train[int(i)] for i in rng.choice(len(train), 2, replace=False)])
        data = model.data_preprocessor(batch, True)
        losses = model.loss(data['inputs'], data['data_samples'])
        optim.update_params(sum(v for k, v in losses.items() if k.startswith('loss_distill')))
    after = agreement()
    print(f'held-out feature cosine {before[0]:.3f} -> {after[0]:.3f}, '
          f'student-teacher mask IoU {before[1]:.3f} -> {after[1]:.3f}')
    assert after[0] > before[0] + 0.4 and after[0] > 0.5
    assert after[1] > before[1] + 0.1
