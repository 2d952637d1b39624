"""FastSAM2VideoPredictor (SAM2's video API) on the tiny FastSAM2 model with random weights."""
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from seg.apis import FastSAM2VideoPredictor
from seg.apis.video_predictor import NO_OBJ_SCORE
from tests.test_apis.video_cases import TINY_CFG, H, T, W, moving_square_frames, tiny_video_predictor


@pytest.fixture(scope='module')
def predictor():
    return tiny_video_predictor()


def _run(predictor, state, **kwargs):
    return [(f, ids, masks.clone()) for f, ids, masks in predictor.propagate_in_video(state, **kwargs)]


def _present(masks: torch.Tensor):
    return (masks > NO_OBJ_SCORE).flatten(1).any(1).tolist()


def test_davis_folder_with_a_first_frame_mask(predictor, shared_data):
    root = shared_data / 'davis2017_sample'
    seq = sorted((root / 'JPEGImages/480p').iterdir())[0]
    state = predictor.init_state(seq)
    assert state.source.decode_count == 1 and (state.video_height, state.video_width) == (480, 854)
    first = np.array(Image.open(root / 'Annotations/480p' / seq.name / '00000.png'))
    frame_idx, obj_ids, masks = predictor.add_new_mask(state, 0, 1, first == 1)
    assert frame_idx == 0 and obj_ids == [1] and masks.shape == (1, 1, 480, 854)
    out = _run(predictor, state)
    assert [f for f, _, _ in out] == list(range(state.num_frames))
    assert all(ids == [1] and m.shape == (1, 1, 480, 854) and m.dtype == torch.float32
               for _, ids, m in out)
    assert state.source.decode_count == state.num_frames  # each frame decoded once


def test_object_added_mid_video_joins_the_one_batched_forward(predictor):
    frames = moving_square_frames(0)
    state = predictor.init_state(frames)
    predictor.add_new_points_or_box(state, 0, 1, points=[[25, 35]], labels=[1])
    alone = _run(predictor, state)
    _, ids, masks = predictor.add_new_points_or_box(state, 4, 2, box=[60, 50, 110, 90])
    assert ids == [1, 2] and _present(masks) == [True, True]  # object 1: its tracked mask there
    assert torch.equal(masks[:1], alone[4][2])
    queries = []  # per head decode: the number of object queries
    hook = predictor.model.panoptic_head.stages[0].register_forward_hook(
        lambda m, args, out: queries.append(args[0].shape[1]))
    try:
        both = _run(predictor, state)
    finally:
        hook.remove()
    assert queries == [1] * 4 + [2] * 4  # one forward per frame, every object a query of it
    for t, (f, ids, masks) in enumerate(both):
        assert f == t and ids == [1, 2] and _present(masks) == [True, t >= 4]
        if t < 4:  # the later object does not change the frames before it
            assert torch.equal(masks[:1], alone[t][2])
    # after propagation: a third object, then a correction of object 1 on frame 6
    predictor.add_new_points_or_box(state, 6, 3, points=[[100, 20], [5, 5]], labels=[1, 0])
    predictor.add_new_points_or_box(state, 6, 1, points=[[60, 40]], labels=[1],
                                    clear_old_points=False)
    assert state.prompts[6][1].points.tolist() == [[60.0, 40.0]]
    predictor.add_new_points_or_box(state, 6, 1, points=[[62, 41]], labels=[0], clear_old_points=False)
    assert state.prompts[6][1].labels.tolist() == [1, 0]
    again = _run(predictor, state)
    assert [_present(m) for _, _, m in again] == [[True, t >= 4, t >= 6] for t in range(T)]
    assert torch.equal(again[5][2][:2], both[5][2])  # frames before the new prompts are unchanged
    assert not torch.equal(again[6][2][:1], both[6][2][:1])  # the correction re-prompts object 1


def test_reverse_propagation(predictor):
    state = predictor.init_state(moving_square_frames(1))
    predictor.add_new_points_or_box(state, 5, 1, points=[[40, 35]], labels=[1])
    backward = _run(predictor, state, reverse=True)
    assert [f for f, _, _ in backward] == [5, 4, 3, 2, 1, 0]
    assert all(_present(m) == [True] for _, _, m in backward)
    forward = _run(predictor, state)
    assert [f for f, _, _ in forward] == [5, 6, 7]
    assert torch.equal(forward[0][2], backward[0][2])  # the prompted frame, both ways
    assert [f for f, _, _ in _run(predictor, state, reverse=True, max_frame_num_to_track=2)] == [5, 4, 3]
    # an object prompted on frame 1 joins the backward pass when it reaches frame 1
    predictor.add_new_points_or_box(state, 1, 2, points=[[100, 70]], labels=[1])
    backward = _run(predictor, state, reverse=True)
    assert [_present(m) for _, _, m in backward] == [[True, f <= 1] for f in (5, 4, 3, 2, 1, 0)]
    # a start past every prompt: the objects are seeded from their nearest prompt behind it
    late = _run(predictor, state, start_frame_idx=6)
    assert [f for f, _, _ in late] == [6, 7] and all(_present(m) == [True, True] for _, _, m in late)
    early = _run(predictor, state, start_frame_idx=3, reverse=True)
    assert [f for f, _, _ in early] == [3, 2, 1, 0]
    assert [_present(m) for _, _, m in early] == [[True, False], [True, False], [True, True],
                                                  [True, True]]


def test_remove_object_and_clear_prompts(predictor):
    state = predictor.init_state(moving_square_frames(2))
    predictor.add_new_points_or_box(state, 0, 1, points=[[25, 35]], labels=[1])
    predictor.add_new_points_or_box(state, 0, 2, box=[60, 50, 110, 90])
    predictor.add_new_points_or_box(state, 3, 2, points=[[80, 70]], labels=[1])
    out = []
    for f, ids, masks in predictor.propagate_in_video(state):
        out.append((f, ids, masks.shape[0]))
        if f == 2:
            assert predictor.remove_object(state, 1) == [2]  # while propagating
    assert out == [(0, [1, 2], 2), (1, [1, 2], 2), (2, [1, 2], 2)] + [(t, [2], 1) for t in range(3, T)]
    assert 1 not in state.prompts[0]
    with pytest.raises(KeyError, match=r'unknown object id 1; the video has objects \[2\]'):
        predictor.remove_object(state, 1)
    predictor.clear_all_prompts_in_frame(state, 3, 2)
    assert state.obj_ids == [2] and 3 not in state.prompts
    predictor.clear_all_prompts_in_frame(state, 0, 2)  # its last prompt: the object goes
    assert state.obj_ids == [] and state.prompts == {}
    with pytest.raises(ValueError, match='no prompts yet'):
        next(predictor.propagate_in_video(state))
    predictor.add_new_points_or_box(state, 0, 7, points=[[25, 35]], labels=[1])
    predictor.reset_state(state)
    assert state.obj_ids == [] and state.prompts == {}


def test_two_videos_at_once_match_separate_runs(predictor):
    def prompted(seed):
        state = predictor.init_state(moving_square_frames(seed))
        predictor.add_new_points_or_box(state, 0, 1, points=[[25, 35]], labels=[1])
        predictor.add_new_points_or_box(state, 2, 2, box=[60, 50, 110, 90])
        return state

    separate = [_run(predictor, prompted(seed)) for seed in (3, 4)]
    a, b = prompted(3), prompted(4)
    interleaved = ([], [])
    for out_a, out_b in zip(predictor.propagate_in_video(a), predictor.propagate_in_video(b)):
        interleaved[0].append(out_a)
        interleaved[1].append(out_b)
    for sep, inter in zip(separate, interleaved):
        assert len(sep) == len(inter) == T
        for (f1, ids1, m1), (f2, ids2, m2) in zip(sep, inter):
            assert f1 == f2 and ids1 == ids2 and torch.equal(m1, m2)
    assert not torch.equal(separate[0][3][2], separate[1][3][2])
    # the model keeps no video of its own
    assert not any(hasattr(predictor.model, n) for n in ('_stream', 'init_video', 'track_frame'))


def test_mp4_is_decoded_only_as_far_as_propagation_goes(predictor, tmp_path):
    path = tmp_path / 'clip.mp4'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 10, (W, H))
    for f in moving_square_frames(5, n=40):
        writer.write(f[..., ::-1].copy())
    writer.release()
    state = predictor.init_state(str(path), offload_to_cpu=True, cache_size=2)
    assert state.num_frames == 40 and state.source.decode_count == 1
    predictor.add_new_points_or_box(state, 10, 1, points=[[30, 35]], labels=[1])
    out = _run(predictor, state, max_frame_num_to_track=3)
    assert [f for f, _, _ in out] == [10, 11, 12, 13]
    assert state.source.decode_count == 5  # frame 0 at init, then 10 (cached) .. 13
    assert len(state.source.cached_indices()) == 2
    assert state.source[13].inputs.device.type == 'cpu'


def test_text_prompt_and_normalised_coordinates(predictor):
    state = predictor.init_state(moving_square_frames(6))
    _, ids, masks = predictor.add_text_prompt(state, 0, 1, 'a yellow square')
    assert ids == [1] and _present(masks) == [True]
    _, _, pixels = predictor.add_new_points_or_box(state, 1, 2, points=[[64, 48]], labels=[1])
    _, _, normalised = predictor.add_new_points_or_box(state, 1, 2, points=[[0.5, 0.5]], labels=[1],
                                                       normalize_coords=False)
    assert torch.equal(pixels, normalised)
    # text and clicks on the same frame combine; clicks with clear_old_points keep the text
    predictor.add_new_points_or_box(state, 0, 1, points=[[25, 35]], labels=[1])
    assert state.prompts[0][1].text == 'a yellow square'
    assert all(_present(m) == [True, t >= 1] for t, (_, _, m) in enumerate(_run(predictor, state)))


def test_bad_inputs_give_clear_errors(predictor, tmp_path):
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'\x00' * 64)
    with pytest.raises(ValueError, match='cannot open video .*broken.mp4'):
        predictor.init_state(str(broken))
    state = predictor.init_state(moving_square_frames(7))
    with pytest.raises(ValueError, match=r'points \[140.0, 10.0\] lies outside the image .*128x96'):
        predictor.add_new_points_or_box(state, 0, 1, points=[[140, 10]], labels=[1])
    with pytest.raises(ValueError, match=r'box \[1.5, 0.5\] lies outside the image .*normalised'):
        predictor.add_new_points_or_box(state, 0, 1, box=[0.1, 0.1, 1.5, 0.5], normalize_coords=False)
    with pytest.raises(ValueError, match=r'mask of object 1 must be \[96, 128\].*got shape \(48, 64\)'):
        predictor.add_new_mask(state, 0, 1, np.ones((48, 64), bool))
    with pytest.raises(ValueError, match='empty'):
        predictor.add_new_mask(state, 0, 1, np.zeros((H, W), bool))
    with pytest.raises(KeyError, match='unknown object id 5'):
        predictor.remove_object(state, 5)
    with pytest.raises(KeyError, match='unknown object id 5'):
        predictor.clear_all_prompts_in_frame(state, 0, 5)
    with pytest.raises(IndexError, match='frame_idx 8 out of range: the video has 8 frames'):
        predictor.add_new_points_or_box(state, 8, 1, points=[[10, 10]], labels=[1])
    with pytest.raises(ValueError, match=r'labels must be 1 \(positive\) or 0 \(negative\), got \[2\]'):
        predictor.add_new_points_or_box(state, 0, 1, points=[[10, 10]], labels=[2])
    with pytest.raises(ValueError, match=r'labels must have one label per point \(1, 2\)'):
        predictor.add_new_points_or_box(state, 0, 1, points=[[10, 10], [5, 5]], labels=[1])
    with pytest.raises(ValueError, match='give points'):
        predictor.add_new_points_or_box(state, 0, 1)
    with pytest.raises(TypeError, match='obj_id must be an int'):
        predictor.add_new_points_or_box(state, 0, 'car', points=[[10, 10]], labels=[1])
    with pytest.raises(ValueError, match='text must be a non-empty str'):
        predictor.add_text_prompt(state, 0, 1, '  ')
    assert state.obj_ids == [] and state.prompts == {}  # nothing half-stored
    stream = predictor.start_stream()
    with pytest.raises(ValueError, match='no frame yet'):
        predictor.add_new_points_or_box(stream, 0, 1, points=[[10, 10]], labels=[1])
    predictor.track(stream, moving_square_frames(7)[0])
    with pytest.raises(ValueError, match='current frame 0, got frame_idx=3'):
        predictor.add_new_points_or_box(stream, 3, 1, points=[[10, 10]], labels=[1])
    with pytest.raises(ValueError, match=r'stream frame 1 is 64x48 \(WxH\) but the stream is '
                                         r'128x96; a stream keeps one frame size'):
        predictor.track(stream, np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r'must be uint8 \(0..255\)'):
        predictor.track(stream, np.zeros((H, W, 3), np.float32))


def test_stream_memory_stays_bounded_over_500_frames():
    predictor = FastSAM2VideoPredictor.from_config(TINY_CFG, image_size=None)
    state = predictor.start_stream()
    memory = state.tracker.memory
    frames = moving_square_frames(8, n=20, h=64, w=64)  # the smallest size the tiny neck takes
    obj_ids, masks = predictor.track(state, frames[0])
    assert obj_ids == [] and masks.shape == (0, 1, 64, 64)
    _, ids, masks = predictor.add_new_points_or_box(state, 0, 1, points=[[12, 12]], labels=[1])
    assert ids == [1] and _present(masks) == [True]
    most = 0
    for t in range(1, 500):
        obj_ids, masks = predictor.track(state, frames[t % 20])
        if t == 100:  # a new object between frames, on the current frame
            _, ids, masks = predictor.add_new_points_or_box(state, t, 2, box=[32, 32, 60, 60])
            assert ids == [1, 2] and _present(masks) == [True, True]
        if t == 200:  # many corrective clicks on one frame replace each other in the memory
            for k in range(2 * memory.long_capacity):
                predictor.add_new_points_or_box(state, t, 1, points=[[10 + k, 12]], labels=[1],
                                                clear_old_points=False)
            assert len(state.prompts[t][1].points) == 2 * memory.long_capacity
        if t == 300:
            predictor.remove_object(state, 1)
        assert obj_ids == ([1] if t <= 100 else [1, 2] if t <= 300 else [2])
        for obj in state.tracker.object_ids:
            counts = memory.num_entries(obj)
            assert counts['long'] <= memory.long_capacity and counts['short'] <= memory.short_capacity
            most = max(most, counts['long'] + counts['short'])
        assert len(state.prompts) <= 1  # only the current frame's prompts are kept
    assert most >= 1 + memory.short_capacity  # the prompted frame + a full short memory
    assert state.frame_idx == 499 and state.tracker.last_frame == 499


def test_iterator_video_is_propagated_forwards_as_it_arrives(predictor):
    frames = moving_square_frames(9, n=5)
    pulled = []

    def camera():
        for i, f in enumerate(frames):
            pulled.append(i)
            yield f

    state = predictor.init_state(camera())
    assert state.num_frames is None and pulled == [0]
    predictor.add_new_points_or_box(state, 0, 1, points=[[25, 35]], labels=[1])
    seen = []
    for f, ids, masks in predictor.propagate_in_video(state):
        assert pulled[-1] == f  # each frame is pulled when propagation reaches it
        seen.append(f)
    assert seen == [0, 1, 2, 3, 4] and state.num_frames == 5
    with pytest.raises(ValueError, match='read forwards only'):
        next(predictor.propagate_in_video(state, reverse=True))
