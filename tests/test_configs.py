"""Every config loads; the class list matches mmdet's; real-size models fail clearly without weights
and build with the right shapes when weights are skipped."""
import runpy
from pathlib import Path

import pytest
import torch
from mmdet.datasets import CocoPanopticDataset
from mmengine.config import Config

import seg  # noqa: F401
from seg.registry import MODELS
from tests.conftest import REPO_ROOT

# pieces read by other configs that hold no model of their own (like those under _base_)
CONFIG_PIECES = ('fastsam2/runtime_default.py', 'fastsam2/toy/toy_base.py', 'fastsam2/toy/eval_toy.py')
CONFIGS = sorted(p for p in (REPO_ROOT / 'configs').rglob('*.py') if '_base_' not in p.parts
                 and str(p.relative_to(REPO_ROOT / 'configs')) not in CONFIG_PIECES)


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: str(p.relative_to(REPO_ROOT / 'configs')))
def test_config_loads(path: Path):
    cfg = Config.fromfile(str(path))
    assert 'model' in cfg and cfg.default_scope == 'mmdet'
    # an edited pipeline variable must reach the dataloader (they hold copies after read_base)
    if cfg.get('train_dataloader') and 'train_pipeline' in cfg:
        assert cfg.train_dataloader.dataset.pipeline == cfg.train_pipeline
    if cfg.get('val_dataloader') and 'test_pipeline' in cfg:
        assert cfg.val_dataloader.dataset.pipeline == cfg.test_pipeline
    # mmengine's Runner wants a loop's dataloader, cfg and evaluator all set or all None
    for loop in ('val', 'test'):
        parts = [cfg.get(f'{loop}_{k}') is None for k in ('dataloader', 'cfg', 'evaluator')]
        assert len(set(parts)) == 1, f'{path}: {loop}_dataloader / _cfg / _evaluator only partly set'


def test_coco_panoptic_class_names_match_mmdet():
    c = runpy.run_path(str(REPO_ROOT / 'configs/_base_/datasets/coco_panoptic_classes.py'))
    assert c['coco_panoptic_classes'] == tuple(CocoPanopticDataset.METAINFO['classes'])
    assert len(c['coco_panoptic_thing_classes']) == 80 and len(c['coco_panoptic_stuff_classes']) == 53


def test_r50_config_needs_its_local_weights_then_builds_with_matching_shapes():
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/rapsam/rapsam_r50_90k_coco_panoptic.py'))
    with pytest.raises(FileNotFoundError, match='RN50'):
        MODELS.build(cfg.model)
    cfg.model.backbone.pretrained = None
    model = MODELS.build(cfg.model).eval()
    head = model.panoptic_head
    assert (head.num_queries, head.num_stages, head.query_feat.embedding_dim) == (100, 3, 256)
    with torch.no_grad():
        feat = model.extract_feat(torch.randn(1, 3, 64, 64))
    assert feat.shape == (1, 256, 16, 16)
    assert model.backbone.text_embed_dim == head.class_text_embeds.shape[1]


@pytest.mark.parametrize('piece', CONFIG_PIECES)
def test_config_pieces_load(piece):
    assert Config.fromfile(str(REPO_ROOT / 'configs' / piece))


def test_fastsam2_vocabulary_holds_every_youtube_vis_class():
    from seg.datasets.youtube_vis import YTVIS_2019_CLASSES
    c = Config.fromfile(str(REPO_ROOT / 'configs/_base_/datasets/fastsam2_vocabulary.py'))
    classes, aliases = c.fastsam2_classes, c.fastsam2_aliases
    assert [y for y in YTVIS_2019_CLASSES if aliases.get(y, y) not in classes] == []
    assert len(set(classes)) == len(classes) and 'object' in c.fastsam2_thing_classes
    assert classes[:80] == c.coco_panoptic_thing_classes


def test_tiny_teacher_config_matches_the_teacher_module():
    from seg.models.teachers import TINY_SAM2_OVERRIDES
    c = Config.fromfile(str(REPO_ROOT / 'configs/_base_/models/sam2_teachers.py'))
    assert tuple(c.sam2_tiny_random_teacher.overrides) == TINY_SAM2_OVERRIDES
