"""StreamingTracker: the per-video state of the streaming VOS path (memory, mask propagation, ids)."""
import inspect

import pytest
import torch

from seg.models.detectors.streaming_tracker import StreamingTracker, mask_confidence
from seg.registry import MODELS
from seg.structures import POSITIVE, build_prompts
from tests.test_models.tiny_cases.heads import HEAD, TEXT, C

H = W = 32  # input size; features 8x8
LONG, SHORT = 2, 3


def _head(**cfg):
    head = MODELS.build(dict(HEAD, memory_reader=dict(), **cfg))
    head.set_class_embeddings(torch.randn(head.num_classes, TEXT))
    return head.eval()


def _tracker(**memory) -> StreamingTracker:
    cfg = dict(type='StreamingMemory', long_capacity=LONG, short_capacity=SHORT, key_frame_interval=3,
               key_frame_score_thr=0.0, text_sim_thr=-1.0)
    cfg.update(memory)
    return StreamingTracker(MODELS.build(cfg))


def _feat():
    return torch.randn(1, C, 1, 8, 8)


def _tokens(head, feat, prompts, text=None):
    return head.prompt_encoder([prompts], [0], feat, (H, W), [text])


def _click(n: int = 1):
    return build_prompts(points=[[[4 + 8 * i, 5]] for i in range(n)], point_labels=[[1]] * n)


@torch.no_grad()
def test_long_stream_keeps_memory_and_work_per_frame_bounded_and_ids_stable():
    head, tracker = _head(), _tracker()
    decoded = []  # number of queries the head decodes per frame
    head.stages[0].register_forward_hook(lambda m, args, out: decoded.append(args[0].shape[1]))
    feat = _feat()
    ids, _ = tracker.step(head, feat, 0, _tokens(head, feat, _click(2)), [1, 2])
    assert ids == [1, 2]
    for t in range(1, 60):
        ids, out = tracker.step(head, _feat(), t)
        assert ids == [1, 2] and out.final.prm_mask.shape == (2, 1, 8, 8)
        for obj in (1, 2):
            counts = tracker.memory.num_entries(obj)
            assert counts['long'] <= LONG and counts['short'] <= SHORT
        readout = tracker.memory.fetch(t)
        assert all(len(r.frame_ids) <= LONG + SHORT for r in readout.values())
        assert all(r.frame_ids[0] == 0 for r in readout.values())  # the prompted frame stays
    assert set(decoded) == {2}


@torch.no_grad()
def test_tracked_objects_start_from_the_newest_remembered_mask_and_the_memory_read():
    head, tracker = _head(), _tracker()
    feat = _feat()
    tracker.step(head, feat, 0, _tokens(head, feat, _click()), [1])
    tracker.step(head, _feat(), 1)
    seen = {}
    head.stages[0].register_forward_pre_hook(lambda m, args: seen.update(query=args[0], masks=args[2]))
    read = {}
    orig_read = head.read_memory

    def spy(query, embeds, valid, age):
        read.update(query=query, embeds=embeds, age=age, result=orig_read(query, embeds, valid, age))
        return read['result']

    head.read_memory = spy
    memory = tracker.memory.fetch(1)[1]
    tracker.step(head, _feat(), 2)
    # mask propagation: frame 1's result (the newest entry) is frame 2's initial mask
    torch.testing.assert_close(seen['masks'][0, 0, 0], memory.masks[memory.frame_ids.argmax()])
    # the decoded query is the object's prompt query conditioned on its memory entries, whose
    # ages count back from frame 2
    assert torch.equal(read['query'][0], tracker.queries[1])
    assert torch.equal(read['embeds'][0], memory.embeds) and read['age'][0].tolist() == [2, 1]
    assert torch.equal(seen['query'][0, 0], read['result'][0])


@torch.no_grad()
def test_prompt_refiner_corrects_every_frame_from_the_propagated_mask():
    head, tracker = _head(prompt_refiner=dict(hidden_channels=4)), _tracker()
    torch.nn.init.normal_(head.prompt_refiner.out_conv.weight)  # not the identity it starts as
    calls = []
    sig = inspect.signature(head.prompt_refiner.forward)
    head.prompt_refiner.register_forward_hook(
        lambda m, args, kwargs, out: calls.append(dict(sig.bind(*args, **kwargs).arguments,
                                                       out=out)), with_kwargs=True)
    feat = _feat()
    p = build_prompts(points=[[[4, 5]], []], point_labels=[[1], []])
    p.masks = torch.zeros(2, H, W)
    p.masks[1, :16, :16] = 1  # object 2 has a mask prompt (alone)
    tokens = _tokens(head, feat, p)
    _, out = tracker.step(head, feat, 0, tokens, [1, 2])
    # the prompted frame: each row's own clicks and mask prompt (where given)
    (call, ) = calls
    assert call['prompt_valid'].tolist() == [False, True]
    torch.testing.assert_close(call['prompt_logits'][1], tokens.mask_logits[1])
    assert (call['point_labels'] == POSITIVE).sum(1).tolist() == [1, 0]
    torch.testing.assert_close(out.final.prm_mask[:, 0], call['out'])
    # the memory keeps a given mask prompt itself rather than the decoded mask
    prev = torch.stack([out.final.prm_mask[0, 0], tokens.mask_logits[1]])
    for t in range(1, 4):
        ids, out = tracker.step(head, _feat(), t)
        call = calls[t]
        # tracked frames: the previous frame's result fed back as the mask prompt, no clicks
        assert ids == [1, 2] and call['prompt_valid'].tolist() == [True, True]
        torch.testing.assert_close(call['prompt_logits'], prev)
        assert not (call['point_labels'] != -1).any()
        # the refined masks are the frame's output
        torch.testing.assert_close(out.final.prm_mask[:, 0], call['out'])
        prev = out.final.prm_mask[:, 0]
    assert len(calls) == 4


@torch.no_grad()
def test_objects_added_reprompted_and_removed_mid_stream():
    head, tracker = _head(), _tracker()
    feat = _feat()
    tracker.step(head, feat, 0, _tokens(head, feat, _click()), [1])
    for t in range(1, 4):
        tracker.step(head, _feat(), t)
    feat = _feat()
    ids, out = tracker.step(head, feat, 4, _tokens(head, feat, _click()), [5])
    assert ids == [1, 5] and out.final.prm_mask.shape[0] == 2
    assert tracker.memory.fetch(4)[5].frame_ids.tolist() == [4]
    assert tracker.next_free_id() == 6
    # a new prompt for a tracked id re-prompts it: a new prompted entry, the old ones kept
    feat = _feat()
    old_query = tracker.queries[1]
    ids, _ = tracker.step(head, feat, 5, _tokens(head, feat, _click()), [1])
    assert ids == [5, 1] and not torch.equal(tracker.queries[1], old_query)
    assert 5 in tracker.memory.fetch(5)[1].frame_ids.tolist()
    tracker.remove_object(1)
    ids, _ = tracker.step(head, _feat(), 6)
    assert ids == [5] and tracker.memory.object_ids == [5]
    with pytest.raises(KeyError, match='no object 1'):
        tracker.remove_object(1)


@torch.no_grad()
def test_a_mask_prompt_alone_enters_the_memory_a_corrected_one_does_not():
    """A mask prompt alone is the object's mask (a VOS reference); with clicks or a box it is
    the mask they correct (a tracked mask, a previous prediction): the decoded one is kept."""
    head, tracker = _head(), _tracker()
    feat = _feat()
    p = build_prompts(points=[[], [[4, 5]], []], point_labels=[[], [0], []],
                      bboxes=torch.tensor([[0., 0, 0, 0], [0, 0, 0, 0], [2, 2, 30, 30]]),
                      box_valid=[False, False, True])
    p.masks = torch.zeros(3, H, W)
    p.masks[:, :16, :16] = 1
    tokens = _tokens(head, feat, p)
    _, out = tracker.step(head, feat, 0, tokens, [1, 2, 3])
    memory = tracker.memory.fetch(0)
    torch.testing.assert_close(memory[1].masks[0], tokens.mask_logits[0])
    for row in (1, 2):
        torch.testing.assert_close(memory[row + 1].masks[0], out.final.prm_mask[row, 0])
        assert not torch.allclose(memory[row + 1].masks[0], tokens.mask_logits[row])


@torch.no_grad()
def test_language_guard_filters_updates_of_text_prompted_objects():
    head = _head()
    text = torch.nn.functional.normalize(torch.randn(1, TEXT), dim=-1)
    p = build_prompts(points=[[[4, 5]], [[20, 20]]], point_labels=[[1], [1]], texts=['dog', ''])
    for thr, text_entries in ((1.0, 1), (-1.0, 1 + SHORT)):
        tracker = _tracker(text_sim_thr=thr)
        feat = _feat()
        tracker.step(head, feat, 0, _tokens(head, feat, p, torch.cat([text, text])), [1, 2])
        for t in range(1, 6):
            tracker.step(head, _feat(), t)
        # object 1 has a text: a threshold of 1 rejects every update; object 2 has none: no guard
        assert len(tracker.memory.fetch(5)[1].frame_ids) == text_entries
        assert len(tracker.memory.fetch(5)[2].frame_ids) == 1 + SHORT


def test_bad_input():
    head, tracker = _head(), _tracker()
    feat = _feat()
    with pytest.raises(ValueError, match='no tracked object and no prompt'):
        tracker.step(head, feat, 0)
    with pytest.raises(ValueError, match='need as many distinct object ids'):
        tracker.step(head, feat, 0, _tokens(head, feat, _click(2)), [1, 1])
    with pytest.raises(ValueError, match=r'one frame \[1, C, 1, h, w\]'):
        tracker.step(head, torch.randn(1, C, 2, 8, 8), 0, _tokens(head, feat, _click()), [1])
    with torch.no_grad():
        tracker.step(head, feat, 3, _tokens(head, feat, _click()), [1])
    with pytest.raises(ValueError, match='frames must arrive in order'):
        tracker.step(head, feat, 3)


def test_mask_confidence():
    logits = torch.full((2, 4, 4), -10.0)
    logits[0, :2] = torch.log(torch.tensor(3.0))  # p = 0.75 on 8 pixels
    torch.testing.assert_close(mask_confidence(logits), torch.tensor([0.75, 0.0]))


@torch.no_grad()
def test_mask_warp_moves_tracked_masks_with_the_image_and_only_from_the_last_frame():
    head = _head(mask_warp=dict(radius=2), prompt_refiner=dict(
        hidden_channels=4, propagation_gain=1.0, correct_propagated=False))
    head.mask_warp.feat_weight.zero_()  # match the colour patches only: random features are noise
    tracker = _tracker()
    g = torch.Generator().manual_seed(0)
    image = torch.nn.functional.interpolate(torch.randn(1, 3, 8, 8, generator=g), size=(H, W),
                                            mode='bilinear', align_corners=False)
    p = build_prompts(masks=torch.zeros(1, H, W))
    p.masks[0, 8:20, 8:20] = 1  # cells 2..4 of the 8x8 grid: remembered as given
    feat = _feat()
    tracker.step(head, feat, 0, _tokens(head, feat, p), [1], image=image)
    shifted = torch.roll(image, shifts=(4, 4), dims=(-2, -1))  # one cell down and right
    _, out = tracker.step(head, _feat(), 1, image=shifted)
    moved = out.final.prm_mask[0, 0] > 0
    want = torch.zeros(8, 8, dtype=torch.bool)
    want[3:6, 3:6] = True
    iou = (moved & want).sum() / (moved | want).sum()
    assert iou > 0.7, moved.int()
    # the warp reads the keys of the frame just tracked; it needs the frame's image
    assert tracker.warp_keys.shape[-2:] == (8, 8)
    with pytest.raises(ValueError, match='needs the frame'):
        tracker.step(head, _feat(), 2)
