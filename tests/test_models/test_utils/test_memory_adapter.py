import pytest
import torch
import torch.nn.functional as F

from seg.models.utils import StreamingMemory
from seg.registry import MODELS

C, H, W = 8, 4, 4


def _memory(**kwargs):
    cfg = dict(type='StreamingMemory', long_capacity=3, short_capacity=2, key_frame_interval=10,
               key_frame_score_thr=0.5, text_sim_thr=0.5)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_capacity_never_exceeded_and_prompted_frames_kept_over_1000_frames():
    mem = _memory()
    prompt_embed = torch.randn(C)
    mem.add_object('a', 0, prompt_embed, torch.ones(H, W))
    for t in range(1, 1001):
        accepted = mem.update(t, {'a': torch.randn(C)}, {'a': torch.rand(H, W)},
                              scores={'a': 0.9 if t % 3 else 0.1})
        assert accepted == {'a': True}
        counts = mem.num_entries('a')
        assert counts['long'] <= 3 and counts['short'] <= 2
        readout = mem.fetch(t)['a']
        assert len(readout.embeds) <= 5 and readout.masks.shape[1:] == (H, W)
        # the prompted frame is always there, first
        assert readout.frame_ids[0] == 0 and torch.equal(readout.embeds[0], prompt_embed)
    ids = mem.fetch(1000)['a'].frame_ids.tolist()
    # long memory: the prompt + the two latest key frames (confident, >= 10 frames apart; every
    # third frame is unconfident, so the gap is 10 or 11); short memory: the last two frames
    assert len(ids) == 5 and ids[-2:] == [999, 1000]
    key = ids[1:3]
    assert key[1] - key[0] in (10, 11) and key[1] > 1000 - 12 and all(i % 3 for i in key)


def test_key_frame_rule():
    mem = _memory(long_capacity=4, short_capacity=1)
    mem.add_object('a', 0, torch.randn(C), torch.ones(H, W))
    for t in range(1, 31):
        mem.update(t, {'a': torch.randn(C)}, {'a': torch.rand(H, W)},
                   scores={'a': 0.2 if t == 10 else 0.9})
    # frame 10 was not confident enough, 11 took its place; then 21 (10 frames later)
    assert mem.fetch(30)['a'].frame_ids.tolist() == [0, 11, 21, 30]


def test_fetch_returns_no_future_frames_and_no_duplicates():
    mem = _memory(key_frame_interval=1)
    mem.add_object('a', 0, torch.randn(C), torch.ones(H, W))
    mem.update(1, {'a': torch.randn(C)}, {'a': torch.rand(H, W)})
    mem.update(2, {'a': torch.randn(C)}, {'a': torch.rand(H, W)})
    # frames 1 and 2 are key frames AND short-memory frames: listed once
    assert mem.fetch(2)['a'].frame_ids.tolist() == [0, 1, 2]
    assert mem.fetch(1)['a'].frame_ids.tolist() == [0, 1]


def test_add_and_remove_objects_mid_stream():
    mem = _memory()
    mem.add_object('a', 0, torch.randn(C), torch.ones(H, W))
    for t in range(1, 5):
        mem.update(t, {'a': torch.randn(C)}, {'a': torch.rand(H, W)})
    mem.add_object('b', 5, torch.randn(C), torch.zeros(H, W))
    out = mem.update(6, {'a': torch.randn(C), 'b': torch.randn(C)},
                     {'a': torch.rand(H, W), 'b': torch.rand(H, W)})
    assert out == {'a': True, 'b': True}
    assert set(mem.fetch(6)) == {'a', 'b'}
    assert mem.fetch(6)['b'].frame_ids.tolist() == [5, 6]
    assert 'b' not in mem.fetch(4)  # b did not exist yet
    mem.remove_object('a')
    assert mem.object_ids == ['b'] and set(mem.fetch(7)) == {'b'}
    with pytest.raises(KeyError, match='add_object first'):
        mem.update(7, {'a': torch.randn(C)}, {'a': torch.rand(H, W)})
    with pytest.raises(KeyError, match="no object 'a'"):
        mem.remove_object('a')
    mem.reset()
    assert mem.fetch(8) == {}


def test_text_guard_rejects_off_text_and_accepts_on_text_embeddings():
    mem = _memory()
    text = F.normalize(torch.randn(C), dim=0)
    off = torch.randn(C)
    off = off - (off @ text) * text  # orthogonal to the text: cosine 0 < 0.5
    on = 3 * text + 0.1 * torch.randn(C)
    mem.add_object('dog', 0, torch.randn(C), torch.ones(H, W), text_embed=text)
    mem.add_object('free', 0, torch.randn(C), torch.ones(H, W))  # no text: no guard
    out = mem.update(1, {'dog': off, 'free': off}, {'dog': torch.rand(H, W), 'free': torch.rand(H, W)})
    assert out == {'dog': False, 'free': True}
    assert mem.fetch(1)['dog'].frame_ids.tolist() == [0]  # the rejected embedding was not stored
    assert mem.update(2, {'dog': on}, {'dog': torch.rand(H, W)}) == {'dog': True}
    assert mem.fetch(2)['dog'].frame_ids.tolist() == [0, 2]
    assert torch.equal(mem.fetch(2)['dog'].embeds[-1], on)


def test_reprompting_and_more_prompted_frames_than_slots():
    mem = _memory(long_capacity=3, short_capacity=0, key_frame_interval=1)  # long memory only
    mem.add_object('a', 0, torch.randn(C), torch.ones(H, W))
    new = torch.randn(C)
    mem.add_object('a', 0, new, torch.ones(H, W))  # same frame: replaces
    assert mem.fetch(0)['a'].frame_ids.tolist() == [0]
    mem.update(1, {'a': torch.randn(C)}, {'a': torch.rand(H, W)})  # a key frame
    assert mem.fetch(1)['a'].frame_ids.tolist() == [0, 1]
    mem.add_object('a', 3, torch.randn(C), torch.ones(H, W))
    mem.add_object('a', 5, torch.randn(C), torch.ones(H, W))  # the key frame makes room
    assert mem.fetch(5)['a'].frame_ids.tolist() == [0, 3, 5]
    for t in range(6, 12):  # all slots prompted: the oldest but the first makes room
        mem.add_object('a', t, torch.randn(C), torch.ones(H, W))
        assert mem.fetch(t)['a'].frame_ids.tolist() == [0, t - 1, t]
    assert torch.equal(mem.fetch(11)['a'].embeds[0], new)  # the first prompt, as re-prompted
    one = _memory(long_capacity=1, short_capacity=0)
    for t in range(3):  # a single slot: the newest prompt replaces the first
        one.add_object('a', t, torch.full((C, ), float(t)), torch.ones(H, W))
        assert one.fetch(t)['a'].frame_ids.tolist() == [t]


def test_entries_are_detached_unless_asked():
    emb = torch.randn(C, requires_grad=True)
    for detach in (True, False):
        mem = _memory(detach=detach)
        mem.add_object('a', 0, emb * 2, torch.ones(H, W))
        assert mem.fetch(0)['a'].embeds.requires_grad is not detach


def test_bad_input():
    mem = _memory()
    with pytest.raises(ValueError, match=r'must be \[C\]'):
        mem.add_object('a', 0, torch.randn(1, C), torch.ones(H, W))
    with pytest.raises(ValueError, match='text_embed'):
        mem.add_object('a', 0, torch.randn(C), torch.ones(H, W), text_embed=torch.randn(C + 1))
    mem.add_object('a', 0, torch.randn(C), torch.ones(H, W))
    mem.add_object('b', 0, torch.randn(C), torch.ones(H, W))
    with pytest.raises(ValueError, match=r"object 'b' was stored with .* masks \(4, 4\)"):
        mem.update(1, {'a': torch.randn(C), 'b': torch.randn(C)},
                   {'a': torch.rand(H, W), 'b': torch.rand(H, W + 1)})
    assert mem.num_entries('a') == dict(long=1, short=0)  # a failed update changes nothing
    mem.update(2, {'a': torch.randn(C)}, {'a': torch.rand(H, W)})
    with pytest.raises(ValueError, match='frames must arrive in order'):
        mem.update(1, {'a': torch.randn(C)}, {'a': torch.rand(H, W)})
    with pytest.raises(ValueError, match='name different objects'):
        mem.update(3, {'a': torch.randn(C)}, {})
    with pytest.raises(ValueError, match='scores miss'):
        mem.update(3, {'a': torch.randn(C)}, {'a': torch.rand(H, W)}, scores={})
    with pytest.raises(ValueError, match='long_capacity'):
        StreamingMemory(long_capacity=0)
