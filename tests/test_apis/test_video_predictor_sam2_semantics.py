"""FastSAM2VideoPredictor's SAM2 semantics: every object's mask on a prompted frame, corrections
of the tracked mask, any number of prompted frames per object, compact masks."""
import numpy as np
import pytest
import torch
from torch import nn

from seg.apis import FastSAM2VideoPredictor
from seg.apis.video_predictor import NO_OBJ_SCORE
from tests.test_apis.video_cases import H, T, W, moving_square_frames, tiny_video_predictor


@pytest.fixture(scope='module')
def predictor():
    return tiny_video_predictor()


def _run(predictor, state, **kwargs):
    return {f: (ids, masks.clone()) for f, ids, masks in predictor.propagate_in_video(state, **kwargs)}


def _present(masks: torch.Tensor):
    return (masks > NO_OBJ_SCORE).flatten(1).any(1).tolist()


def test_prompts_return_every_objects_mask_on_the_frame(predictor):
    state = predictor.init_state(moving_square_frames(0))
    predictor.add_new_points_or_box(state, 0, 1, points=[[25, 35]], labels=[1])
    _, ids, on_0 = predictor.add_new_points_or_box(state, 0, 2, box=[60, 50, 110, 90])
    assert ids == [1, 2] and _present(on_0) == [True, True]  # object 1's prompt result stays
    tracked = _run(predictor, state)
    # the prompted frame again, both objects in one forward: the same masks (batching noise)
    assert torch.allclose(tracked[0][1], on_0, atol=1e-3)
    # object 3 on frame 5: objects 1 and 2 keep their tracked masks there, unchanged
    frame, ids, masks = predictor.add_new_points_or_box(state, 5, 3, points=[[100, 20]], labels=[1])
    assert frame == 5 and ids == [1, 2, 3] and _present(masks) == [True, True, True]
    assert torch.equal(masks[:2], tracked[5][1])
    # prompting object 3 again, by mask and by text, changes only object 3
    mask = np.zeros((H, W), bool)
    mask[10:40, 80:120] = True
    _, _, by_mask = predictor.add_new_mask(state, 5, 3, mask)
    _, _, by_text = predictor.add_text_prompt(state, 5, 3, 'a yellow square')
    assert torch.equal(by_mask[:2], tracked[5][1]) and torch.equal(by_text[:2], tracked[5][1])
    assert not torch.equal(by_mask[2], masks[2])
    # a frame no propagation reached yet: objects without a mask there are empty
    state.outputs.pop(6)
    _, ids, masks = predictor.add_new_points_or_box(state, 6, 2, points=[[80, 70]], labels=[1])
    assert _present(masks) == [False, True, False]
    assert (masks[[0, 2]] == NO_OBJ_SCORE).all()


def test_bool_masks_by_default_and_only_grid_logits_are_kept(predictor):
    """The default output is bool at the video's size, equal to the logits' ``> 0`` (so SAM2 code
    thresholding the logits works unchanged); the state keeps float16 mask-grid logits only."""
    frames = moving_square_frames(1, n=4, h=240, w=320)
    compact = FastSAM2VideoPredictor(predictor.model)
    states = [p.init_state(frames) for p in (predictor, compact)]
    outs = []
    for p, state in zip((predictor, compact), states):
        prompt = p.add_new_points_or_box(state, 0, 1, points=[[60, 90]], labels=[1])[2]
        p.add_new_points_or_box(state, 2, 2, box=[150, 100, 300, 200])
        outs.append([prompt] + [m for _, _, m in p.propagate_in_video(state)])
    for logits, masks in zip(*outs):
        assert masks.dtype == torch.bool and masks.shape[1:] == (1, 240, 320)
        assert torch.equal(masks, logits > 0) and torch.equal(masks > 0, masks)
    assert outs[1][1][1].sum() == 0  # object 2 before its prompt: empty
    kept = [m for per_frame in states[1].outputs.values() for m in per_frame.values()]
    assert len(kept) == 4 + 2  # object 1 on every frame, object 2 from frame 2 on
    assert all(m.dtype == torch.float16 and m.numel() * 16 <= 240 * 320 for m in kept)


class IdealCorrector(nn.Module):
    """Stands in for a trained ``PromptMaskRefiner`` (random weights ignore mask inputs): the
    row's mask prompt (a tracked object's propagated mask too) minus its negative clicks'
    neighbourhoods; a row without a mask prompt is empty. So tracking copies the first mask and
    a correction keeps the mask it is given except where it is clicked."""

    def __init__(self, refiner: nn.Module) -> None:
        super().__init__()
        self.refiner = refiner  # its click maps

    def project(self, feats: torch.Tensor) -> torch.Tensor:
        return feats

    def forward(self, feat, mask_logits, prompt_logits, prompt_valid, point_coords, point_labels,
                propagated=None, projected=False):
        negative = self.refiner.click_maps(point_coords.to(mask_logits), point_labels,
                                           mask_logits.shape[-2:])[:, 1]
        base = torch.where(prompt_valid[:, None, None], prompt_logits.clamp(-5, 5),
                           torch.full_like(mask_logits, -5.0))
        return base - 20 * negative


@pytest.fixture
def corrector(predictor):
    head = predictor.model.panoptic_head
    real = head.prompt_refiner
    head.prompt_refiner = IdealCorrector(real)
    yield FastSAM2VideoPredictor(predictor.model)
    head.prompt_refiner = real


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum() / (a | b).sum().clamp(min=1))


def test_a_negative_click_corrects_the_tracked_mask(corrector):
    state = corrector.init_state(moving_square_frames(2))
    first = np.zeros((H, W), bool)
    first[20:70, 30:100] = True
    corrector.add_new_mask(state, 0, 1, first)
    tracked = _run(corrector, state)
    on_5 = tracked[5][1][0, 0]
    assert _iou(on_5, torch.from_numpy(first)) > 0.9  # the stand-in tracks by copying

    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')

    def near(x, y):  # the pixels a click at (x, y) may change
        return (yy - y) ** 2 + (xx - x) ** 2 <= 12 ** 2

    # one negative click inside the tracked mask, clear_old_points=True: the tracked mask minus a
    # hole (from scratch, a single negative click would give an empty mask)
    _, _, masks = corrector.add_new_points_or_box(state, 5, 1, points=[[50, 45]], labels=[0],
                                                  clear_old_points=True)
    fixed = masks[0, 0]
    assert not fixed[45, 50] and on_5[45, 50]
    assert _iou(fixed & ~near(50, 45), on_5 & ~near(50, 45)) > 0.95
    # a second click with clear_old_points=True replaces the first: still the tracked mask, now
    # with only the new hole
    _, _, masks = corrector.add_new_points_or_box(state, 5, 1, points=[[80, 30]], labels=[0],
                                                  clear_old_points=True)
    again = masks[0, 0]
    assert again[45, 50] and not again[30, 80]
    assert _iou(again & ~near(80, 30), on_5 & ~near(80, 30)) > 0.95
    # clear_old_points=False adds to the clicks: both holes
    _, _, masks = corrector.add_new_points_or_box(state, 5, 1, points=[[50, 45]], labels=[0],
                                                  clear_old_points=False)
    assert not masks[0, 0, 45, 50] and not masks[0, 0, 30, 80]
    # propagation carries the corrected mask on: the memory took the decoded mask, not the one
    # it corrected
    rerun = _run(corrector, state)
    assert torch.equal(rerun[5][1][0, 0], masks[0, 0])
    later = rerun[7][1][0, 0]
    assert not later[45, 50] and not later[30, 80] and later[60, 40]


def test_an_object_prompted_on_every_frame(predictor):
    """No cap on prompted frames per object: the memory keeps the first and the newest."""
    trackers = []
    new_tracker = predictor.model.new_tracker

    def recording():
        trackers.append(new_tracker())
        return trackers[-1]

    state = predictor.init_state(moving_square_frames(3))
    for t in range(T):
        predictor.add_new_points_or_box(state, t, 1, points=[[25 + 3 * t, 35]], labels=[1])
    predictor.add_new_points_or_box(state, 0, 2, box=[60, 50, 110, 90])
    predictor.model.new_tracker = recording
    try:
        forward = _run(predictor, state)
        backward = _run(predictor, state, reverse=True)
    finally:
        del predictor.model.new_tracker
    assert sorted(forward) == sorted(backward) == list(range(T))
    assert all(_present(m) == [True, True] for _, m in forward.values())
    capacity = trackers[0].memory.long_capacity
    assert T > capacity + 1
    # every frame re-prompts object 1, so all its entries are prompted ones (steps: forward,
    # frame t is step t; backward, frame T-1-t): the first and the newest
    for tracker in trackers:
        assert tracker.memory.num_entries(1) == dict(long=capacity, short=0)
        kept = tracker.memory.fetch(T - 1)[1].frame_ids.tolist()
        assert kept == [0] + list(range(T - capacity + 1, T))
    stream = predictor.start_stream()
    for t, frame in enumerate(moving_square_frames(4)):
        predictor.track(stream, frame)
        _, ids, masks = predictor.add_new_points_or_box(stream, t, 1, points=[[25 + 3 * t, 35]],
                                                        labels=[1])
        assert ids == [1] and _present(masks) == [True]
    assert stream.tracker.memory.num_entries(1)['long'] == capacity
