"""seg.models.utils.text_embed_cache and RapSAM._ensure_class_embeds: class-name text embeddings
are computed once per (text tower, class list), loaded by later builds, recomputed when the
cache file is corrupt, and a checkpoint's own embeddings win."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from torch import nn

from seg.apis.image_predictor import build_model
from seg.models.backbones.openclip_backbone import OpenCLIPBackbone
from seg.models.utils import text_embed_cache as cache
from seg.registry import MODELS

TINY = str(Path(__file__).resolve().parents[3] / 'configs/fastsam2/model_fastsam2_tiny.py')


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / 'cache'))


def _counting(calls: list, value: torch.Tensor):
    def compute():
        calls.append(1)
        return value
    return compute


def test_cache_hit_and_key_changes_with_class_list():
    tower, calls = nn.Linear(4, 3), []
    a = cache.cached_class_embeddings(tower, 'lin', ['cat', 'dog'], ['{}'],
                                      _counting(calls, torch.ones(2, 3)))
    cached = cache.cached_class_embeddings(tower, 'lin', ['cat', 'dog'], ['{}'],
                                           _counting(calls, torch.zeros(2, 3)))
    assert len(calls) == 1 and torch.equal(cached, a)
    # another class list, template or tower weight: another entry
    cache.cached_class_embeddings(tower, 'lin', ['cat', 'bird'], ['{}'],
                                  _counting(calls, torch.zeros(2, 3)))
    assert len(calls) == 2
    key = cache.cache_key('lin', cache.tower_fingerprint(tower), ['cat', 'dog'], ['{}'])
    assert key != cache.cache_key('lin', cache.tower_fingerprint(tower), ['cat'], ['{}'])
    assert key != cache.cache_key('lin', cache.tower_fingerprint(tower), ['cat', 'dog'], ['a {}'])
    with torch.no_grad():
        tower.weight[0, 0] += 1
    assert key != cache.cache_key('lin', cache.tower_fingerprint(tower), ['cat', 'dog'], ['{}'])
    assert len(list(cache.cache_dir().glob('*.pt'))) == 2


def test_corrupt_cache_file_is_recomputed_with_a_warning():
    tower, calls = nn.Linear(4, 3), []
    cache.cached_class_embeddings(tower, 'lin', ['cat'], ['{}'], _counting(calls, torch.ones(1, 3)))
    (path, ) = cache.cache_dir().glob('*.pt')
    path.write_bytes(b'not a torch file')
    with pytest.warns(UserWarning, match='unreadable'):
        got = cache.cached_class_embeddings(tower, 'lin', ['cat'], ['{}'],
                                            _counting(calls, torch.full((1, 3), 2.0)))
    assert len(calls) == 2 and torch.equal(got, torch.full((1, 3), 2.0))
    assert torch.equal(torch.load(path, weights_only=True)['embeds'], got)  # rewritten


def test_second_build_loads_from_cache_and_checkpoint_embeds_win(tmp_path, monkeypatch):
    calls = []
    encode = OpenCLIPBackbone.encode_text

    def counting(self, texts, normalize=True):
        calls.append(len(texts))
        return encode(self, texts, normalize)

    monkeypatch.setattr(OpenCLIPBackbone, 'encode_text', counting)
    cfg = Config.fromfile(TINY).model
    models = []
    for _ in range(2):  # two builds with the same weights (same seed): one computation
        torch.manual_seed(0)
        models.append(MODELS.build(cfg))
        models[-1]._ensure_class_embeds()
    num_classes = len(models[0].class_names)
    assert len(calls) == num_classes
    embeds = models[0].panoptic_head.class_text_embeds
    assert embeds.abs().sum() > 0
    assert torch.equal(models[1].panoptic_head.class_text_embeds, embeds)

    # a checkpoint carrying its own embeddings keeps them (mmengine's load_checkpoint path)
    state = models[0].state_dict()
    state['panoptic_head.class_text_embeds'] = embeds * 2
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=state), ckpt)
    model = build_model(TINY, str(ckpt), image_size=None)
    assert len(calls) == num_classes
    assert torch.equal(model.panoptic_head.class_text_embeds, embeds * 2)
