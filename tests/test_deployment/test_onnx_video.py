"""seg.deployment video export: the tracker's prompted-frame and tracked-frame graphs match PyTorch
through onnxruntime for several object / memory-entry counts of one exported file, and the
reference host loop (encoder + video graphs + host-side StreamingMemory) matches
``RapSAM.track_step`` frame by frame on the tiny FastSAM2 (random init, 96x128 input), without
and with the head's ``mask_warp`` (LocalMaskWarp, whose previous-frame keys the graphs carry)."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from seg.apis.image_predictor import build_model
from seg.deployment import (
    FramePrompts,
    ONNXVideoTracker,
    check_parity,
    check_video_parity,
    export_onnx,
    run_video,
)
from seg.deployment.onnx_export import (
    VIDEO_PROMPT_INPUTS,
    VIDEO_PROMPT_OUTPUTS,
    VIDEO_STEP_INPUTS,
    VIDEO_STEP_OUTPUTS,
    ImageEncoderONNX,
    VideoStepONNX,
    example_video_step_inputs,
    example_warp_inputs,
)
from tests.test_deployment.onnx_cases import graph_dims

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / 'configs/fastsam2/model_fastsam2_tiny.py')
INPUT_HW = (96, 128)  # not square: height and width cannot be swapped unnoticed


def _export_tiny(out, cfg_options=None):
    with pytest.warns(UserWarning, match='RANDOM weights'):
        model = build_model(TINY, None, image_size=None, cfg_options=cfg_options)
    # the memory reader, the prompt refiner (propagated-mask gain) and the mask refiner start as
    # the identity (zero-initialised outputs): random values make the memory path matter
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.any() and name.startswith(('panoptic_head.memory_reader',
                                                'panoptic_head.prompt_refiner', 'mask_refiner')):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    files = export_onnx(model, str(out), INPUT_HW, ('encoder', 'video'), verbose=False)
    return model, out, files


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    return _export_tiny(tmp_path_factory.mktemp('onnx_video'))


@pytest.fixture(scope='module')
def exported_warp(tmp_path_factory):
    """The tiny model with the mask warp of configs/fastsam2/vos_tiny_davis.py."""
    return _export_tiny(tmp_path_factory.mktemp('onnx_video_warp'),
                        {'model.panoptic_head.mask_warp': dict(radius=3)})



def _assert_inputs_are_live(session, step, names, base, *variants) -> None:
    """Each input set gives the same outputs in onnxruntime and PyTorch, and each variant of
    ``base`` (one input changed) gives other masks: the changed input is a live graph input."""
    results = []
    for inputs in (base, *variants):
        got = session.run(None, {n: x.numpy() for n, x in zip(names, inputs)})
        with torch.no_grad():
            want = step(*inputs)
        assert max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want)) < 1e-4
        results.append(got[0])
    for other in results[1:]:
        assert np.abs(other - results[0]).max() > 1e-2

def test_video_graphs_have_dynamic_axes_and_host_settings(exported):
    model, _, files = exported
    step = onnx.load(files['video_step']).graph
    dims = graph_dims(step.input)
    assert [i.name for i in step.input] == VIDEO_STEP_INPUTS
    assert dims['memory_embeds'][:2] == ['num_objects', 'num_entries']
    assert dims['memory_valid'] == dims['memory_ages'] == ['num_objects', 'num_entries']
    assert dims['prev_mask_logits'] == ['num_objects', 24, 32]
    prompt = onnx.load(files['video_prompt']).graph
    assert [i.name for i in prompt.input] == VIDEO_PROMPT_INPUTS
    assert graph_dims(prompt.input)[VIDEO_PROMPT_INPUTS[5]] == ['num_objects', 96, 128]
    settings = json.loads(Path(files['video_config']).read_text())
    expected = {k: v for k, v in model.memory_cfg.items() if k != 'type'}
    assert settings == dict(input_hw=list(INPUT_HW), memory=expected)


def test_video_graph_parity_for_object_and_memory_counts(exported):
    model, out, _ = exported
    # traced with 2 objects x 3 entries (2 objects x 3 points): every case differs in an axis
    diffs = check_parity(model, str(out), INPUT_HW, ('video', ), cases=((1, 1), (3, 2)),
                         video_cases=((1, 1), (1, 6), (3, 1), (3, 6)))
    print('video graph parity (max abs diff):', {k: f'{v:.2g}' for k, v in diffs.items()})
    assert set(diffs) == {'video_prompt_N1_P1', 'video_prompt_N3_P2', 'video_step_K1_M1',
                          'video_step_K1_M6', 'video_step_K3_M1', 'video_step_K3_M6'}
    assert max(diffs.values()) < 1e-4, diffs


def test_video_step_graph_reads_the_memory_inputs(exported):
    """The memory is a live input of the graph (not folded into a constant at export): other
    embeddings or ages give other masks, and PyTorch agrees on each."""
    model, out, _ = exported
    session = ort.InferenceSession(str(out / 'video_step.onnx'), providers=['CPUExecutionProvider'])
    embed = torch.randn(1, 32, 24, 32, generator=torch.Generator().manual_seed(5))
    base = (embed, ) + example_video_step_inputs(model, embed, 3, 4, seed=7)
    other_memory = list(base)
    other_memory[2] = example_video_step_inputs(model, embed, 3, 4, seed=8)[1]
    older = list(base)
    older[4] = base[4] + 20
    _assert_inputs_are_live(session, VideoStepONNX(model).eval(), VIDEO_STEP_INPUTS,
                            base, other_memory, older)


def test_host_loop_matches_track_step(exported):
    model, out, _ = exported
    regional = model.regional_features
    loop = check_video_parity(model, str(out), num_frames=4)
    print(f"host loop vs track_step over 4 frames: max abs logit diff "
          f"{loop['video_loop_max_abs_diff']:.2g}, min mask IoU {loop['video_loop_min_iou']:.4f}")
    assert loop['video_loop_max_abs_diff'] < 1e-3
    assert loop['video_loop_min_iou'] >= 0.99
    assert model.regional_features is regional  # the comparison's encoder setting is undone


def test_host_loop_bookkeeping_and_errors(exported):
    _, out, _ = exported
    host = ONNXVideoTracker(str(out))
    assert not host.mask_warp
    frame = np.random.default_rng(0).standard_normal((1, 3, *INPUT_HW)).astype(np.float32)
    mask = np.zeros((1, *INPUT_HW), np.float32)
    mask[0, 20:60, 30:90] = 1
    frames = run_video(host, [frame] * 14, {1: FramePrompts.create([7], INPUT_HW, masks=mask)})
    idx, ids, logits, iou = next(frames)
    assert (idx, ids, logits.shape, iou.shape) == (0, [], (0, 24, 32), (0, ))  # nothing prompted yet
    for idx, ids, logits, iou in frames:
        assert ids == [7] and logits.shape == (1, 24, 32) and iou.shape == (1, )
    capacity = host.memory_settings['long_capacity'] + host.memory_settings['short_capacity']
    held = host.state.memory.num_entries(7)
    assert held['long'] + held['short'] <= capacity
    with pytest.raises(ValueError, match='does not come after frame 13'):
        host.step(frame, 13)
    with pytest.raises(ValueError, match=r'mask_prompt must be \(1, 96, 128\)'):
        FramePrompts.create([8], INPUT_HW, masks=np.ones((1, 24, 32)))
    with pytest.raises(ValueError, match=r'object\(s\) \[8\] have no prompt'):
        FramePrompts.create([8], INPUT_HW, points=[[[3, 4]]], point_labels=[[-1]])
    with pytest.raises(ValueError, match='preprocessed to'):
        host.step(frame[..., :64], 14)
    host.remove_object(7)
    assert host.object_ids == []


def test_host_loop_names_missing_graphs(tmp_path):
    with pytest.raises(FileNotFoundError, match="--parts encoder,video"):
        ONNXVideoTracker(str(tmp_path))


def test_build_trt_profiles_the_video_graphs(exported, tmp_path):
    """build_trt.sh with a stand-in trtexec that records its arguments: the video graphs get
    profiles over objects, points and memory entries (default: the memory's capacity)."""
    model, out, _ = exported
    m = model.memory_cfg['long_capacity'] + model.memory_cfg['short_capacity']
    fake = tmp_path / 'trtexec'
    fake.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls.txt"\n')
    fake.chmod(0o755)
    env = {**os.environ, 'TRTEXEC': str(fake)}
    subprocess.run(['bash', str(REPO / 'tools/deployment/build_trt.sh'), str(out), '4', '3'],
                   check=True, env=env, capture_output=True)
    calls = (tmp_path / 'calls.txt').read_text().splitlines()
    assert [c.split()[0] for c in calls] == [f'--onnx={out}/{g}.onnx'
                                             for g in ('encoder', 'video_prompt', 'video_step')]
    assert (f'--maxShapes=image_embed:1x32x24x32,queries:4x32,memory_embeds:4x{m}x32,'
            f'memory_valid:4x{m},memory_ages:4x{m},prev_mask_logits:4x24x32') in calls[2]
    assert 'point_coords:4x3x2' in calls[1] and 'mask_prompt:4x96x128' in calls[1]


# ---------------------------------------------------------------- with the head's mask_warp
def test_warp_graphs_carry_the_frame_and_its_keys(exported_warp):
    model, out, files = exported_warp
    dk = model.panoptic_head.mask_warp.key_proj.out_channels + 27  # features + colour patches

    def io(graph):
        return graph_dims(graph.input), graph_dims(graph.output)

    step_in, step_out = io(onnx.load(files['video_step']).graph)
    prompt_in, prompt_out = io(onnx.load(files['video_prompt']).graph)
    assert list(step_in) == VIDEO_STEP_INPUTS + ['image', 'prev_warp_keys']
    assert list(step_out) == VIDEO_STEP_OUTPUTS + ['warp_keys']
    assert list(prompt_in) == VIDEO_PROMPT_INPUTS + ['image']
    assert list(prompt_out) == VIDEO_PROMPT_OUTPUTS + ['warp_keys']
    assert step_in['image'] == prompt_in['image'] == [1, 3, *INPUT_HW]
    assert step_in['prev_warp_keys'] == step_out['warp_keys'] == prompt_out['warp_keys'] == \
        [dk, 24, 32]
    assert ONNXVideoTracker(str(out)).mask_warp


def test_warp_graph_parity_and_host_loop(exported_warp):
    model, out, _ = exported_warp
    diffs = check_parity(model, str(out), INPUT_HW, ('video', ), cases=((1, 1), (3, 2)),
                         video_cases=((1, 1), (3, 6)))
    loop = check_video_parity(model, str(out), num_frames=4)
    print('mask_warp video graph parity (max abs diff):', {k: f'{v:.2g}' for k, v in diffs.items()},
          f"host loop vs track_step: {loop['video_loop_max_abs_diff']:.2g}, "
          f"min IoU {loop['video_loop_min_iou']:.4f}")
    assert len(diffs) == 4 and max(diffs.values()) < 1e-4, diffs
    assert loop['video_loop_max_abs_diff'] < 1e-3
    assert loop['video_loop_min_iou'] >= 0.99


def test_warp_inputs_are_live(exported_warp):
    """The previous keys and the frame are inputs of the graph, not constants of the trace: other
    motion (keys of the frame rolled the other way) or another frame give other masks."""
    model, out, _ = exported_warp
    session = ort.InferenceSession(str(out / 'video_step.onnx'), providers=['CPUExecutionProvider'])
    names = [i.name for i in session.get_inputs()]
    image = torch.randn(1, 3, *INPUT_HW, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        embed = ImageEncoderONNX(model)(image)
    # a previous mask with an edge inside the frame, so moving it changes something
    memory = example_video_step_inputs(model, embed, 2, 3, seed=4)[:4]
    prev = torch.full((2, 24, 32), -6.0)
    prev[:, 6:18, 8:20] = 6.0
    base = (embed, *memory, prev) + example_warp_inputs(model, 'video_step', embed, image)
    other_motion = (embed, *memory, prev) + example_warp_inputs(model, 'video_step', embed,
                                                                image, shift=-1)
    other_frame = base[:6] + (image.flip(-1), base[7])
    _assert_inputs_are_live(session, VideoStepONNX(model).eval(), names, base, other_motion,
                            other_frame)


def test_host_loop_rejects_graphs_of_two_models(exported, exported_warp, tmp_path):
    for name in ('encoder.onnx', 'video.json'):
        (tmp_path / name).symlink_to(exported[1] / name)
    (tmp_path / 'video_prompt.onnx').symlink_to(exported[1] / 'video_prompt.onnx')
    (tmp_path / 'video_step.onnx').symlink_to(exported_warp[1] / 'video_step.onnx')
    with pytest.raises(ValueError, match='come from different models'):
        ONNXVideoTracker(str(tmp_path))


def test_build_trt_profiles_the_warp_inputs(exported_warp, tmp_path):
    """The warp's inputs have fixed shapes: the profiles pass them unchanged."""
    _, out, _ = exported_warp
    fake = tmp_path / 'trtexec'
    fake.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls.txt"\n')
    fake.chmod(0o755)
    subprocess.run(['bash', str(REPO / 'tools/deployment/build_trt.sh'), str(out), '4', '3'],
                   check=True, env={**os.environ, 'TRTEXEC': str(fake)}, capture_output=True)
    calls = (tmp_path / 'calls.txt').read_text().splitlines()
    assert 'image:1x3x96x128,prev_warp_keys:59x24x32' in calls[2].split('--maxShapes=')[1]
    assert calls[1].split('--minShapes=')[1].split()[0].endswith('mask_valid:1,image:1x3x96x128')
