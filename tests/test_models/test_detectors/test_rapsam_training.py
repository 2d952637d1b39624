"""RapSAM training wiring: SAM2 distillation, iterative interaction (corrective clicks + mask
prompts), routed prompt exits, prompts on any frame of a clip, IoU scores."""
import copy

import pytest
import torch
import torch.nn.functional as F

import seg  # noqa: F401
from seg.models import VideoSegDataPreprocessor
from seg.models.detectors import rapsam as rapsam_module
from seg.models.detectors.streaming_tracker import StreamingTracker
from seg.registry import MODELS
from seg.structures import build_prompts
from tests.test_models.tiny_cases.detectors import (
    distilled_model_cfg,
    fastsam2_model_cfg,
    packed_clip,
    packed_image,
    run_loss,
    tiny_model_cfg,
)

ALWAYS_ONE_ROUND = dict(interactive_rounds=dict(max_rounds=1, prob=1.0))


def distilled_cfg(train_cfg: dict = None) -> dict:
    cfg = distilled_model_cfg()
    cfg.train_cfg = train_cfg
    return cfg


def _spy_calls(monkeypatch, obj, name: str) -> list:
    """Record ``(args, kwargs, result)`` of every call of ``obj.name``."""
    calls, original = [], getattr(obj, name)

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append((args, kwargs, out))
        return out

    monkeypatch.setattr(obj, name, spy)
    return calls


# --------------------------------------------------------------------------------- distillation
def test_distillation_losses_and_the_teacher_stays_outside_the_model():
    model = MODELS.build(distilled_cfg()).train()
    losses = run_loss(model, [packed_image(), packed_image(prompts=False)])
    for key in ('loss_distill_feat', 'loss_distill_mask', 'loss_distill_prompt', 'distill_cos',
                'distill_mask_iou'):
        assert key in losses and torch.isfinite(losses[key]), key
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.distill_loss.projections.parameters())
    teacher = model.teacher
    assert not teacher.training and all(p.grad is None for p in teacher.parameters())
    # not a submodule: not in the state dict, the optimizer's parameters, modules() or .train()
    assert not any(k.startswith(('teacher', '_teacher')) or '.sam.' in k for k in model.state_dict())
    teacher_params = {id(p) for p in teacher.parameters()}
    assert teacher_params and not teacher_params & {id(p) for p in model.parameters()}
    assert not any(m is teacher for m in model.modules())
    assert copy.deepcopy(model).teacher is teacher  # an EMA copy shares it


def test_distillation_config_is_checked_at_build_time():
    cfg = distilled_cfg()
    cfg.pop('teacher')
    with pytest.raises(ValueError, match='teacher= and distill= go together'):
        MODELS.build(cfg)
    cfg = distilled_cfg()
    cfg.pop('distill')
    with pytest.raises(ValueError, match='teacher= and distill= go together'):
        MODELS.build(cfg)
    cfg = distilled_cfg()
    cfg.distill.pairs[1]['student'] = 'stage3'  # not in backbone.distill_keys
    with pytest.raises(ValueError, match=r"student feature\(s\) \['stage3'\]"):
        MODELS.build(cfg)
    cfg = distilled_cfg()
    cfg.distill.pairs[0]['teacher_channels'] = 16  # the teacher's level 2 has 32
    with pytest.raises(ValueError, match="does not match the teacher's feature levels"):
        MODELS.build(cfg)


def test_teacher_sees_the_student_input_and_its_final_prompts(monkeypatch):
    """Two correction rounds, then the teacher gets the de-normalised RGB batch and exactly the
    prompts (clicks and mask prompts included) that the student's final forward encoded."""
    model = MODELS.build(distilled_cfg(train_cfg=dict(
        interactive_rounds=dict(max_rounds=2, prob=1.0)))).train()
    encoded = _spy_calls(monkeypatch, model.panoptic_head.prompt_encoder, 'forward')
    taught = _spy_calls(monkeypatch, model.teacher, 'forward')
    image, other = packed_image(), packed_image(prompts=False)
    raw = image['inputs'].clone()
    run_loss(model, [image, other])
    rounds = len(encoded) - 1  # the rounds, then the training forward
    assert rounds in (1, 2) and len(taught) == 1  # one teacher call
    (images, prompts), kwargs, _ = taught[0]
    # the first image is the student's input, BGR -> RGB, de-normalised to 0..255
    torch.testing.assert_close(images[0, :, :48, :64], raw.flip(0).float(), atol=1e-3, rtol=0)
    assert prompts[1] is None and kwargs['mask_size'] == (16, 16)  # the student's mask grid
    final = encoded[-1][0][0][0]  # the last encoder call, its first (only) prompt set
    assert prompts[0] is final
    assert final.points.shape[1] == 2 + rounds  # one click per round appended
    # row 1 got the previous prediction as mask prompt; row 0 keeps its own (a VOS reference)
    original = encoded[0][0][0][0]  # the preprocessed sample's prompts, left as they were
    assert original.points.shape[1] == 2 and not original.masks[1].any()
    assert torch.equal(final.masks[0], original.masks[0]) and final.masks[1].any()


# --------------------------------------------------------------------------- interactive rounds
def test_a_correction_round_adds_a_corrective_click_and_the_previous_mask(monkeypatch):
    cfg = fastsam2_model_cfg()
    cfg.train_cfg = ALWAYS_ONE_ROUND
    model = MODELS.build(cfg).train()
    head = model.panoptic_head
    decodes = []
    original_forward = head.forward

    def forward(feats, prompts=None, run_objects=True, num_stages=None, **kwargs):
        out = original_forward(feats, prompts, run_objects, num_stages, **kwargs)
        decodes.append(dict(run_objects=run_objects, num_stages=num_stages,
                            grad=torch.is_grad_enabled(), feats_grad=feats.requires_grad,
                            logits=out.final.prm_mask.detach()))
        return out

    monkeypatch.setattr(head, 'forward', forward)
    encoded = _spy_calls(monkeypatch, head.prompt_encoder, 'forward')
    sample = packed_image(h=64, w=64)
    run_loss(model, [sample])
    # the round: prompt queries only, at the router's interactive depth, no gradient
    round_, train = decodes
    assert round_ == dict(round_, run_objects=False, num_stages=1, grad=False, feats_grad=False)
    assert train['run_objects'] and train['grad']
    before, after = encoded[0][0][0][0], encoded[-1][0][0][0]
    assert after.points.shape[1] == before.points.shape[1] + 1
    # row 0 carries a mask prompt of its own (a VOS reference): it is left alone
    assert after.point_labels[0, -1] == -1 and torch.equal(after.masks[0], before.masks[0])
    # row 1 (the stuff segment, label 100): a click inside the error of the round's prediction ...
    label = int(after.point_labels[1, -1])
    x, y = after.points[1, -1].tolist()
    logits = round_['logits'][1, 0]  # [16, 16] grid, stride 4
    cell = (int(y // 4), int(x // 4))
    gt = sample['data_samples'].gt_sem_seg.sem_seg[0] == 100
    gt_grid = F.interpolate(gt[None, None].float(), size=(16, 16), mode='area')[0, 0] > 0.5
    assert label in (0, 1)
    assert bool(gt_grid[cell]) == (label == 1) and bool(logits[cell] > 0) == (label == 0)
    # ... and the round's prediction as its mask prompt, at input resolution
    expected = F.interpolate(logits[None, None], size=(64, 64), mode='bilinear',
                             align_corners=False)[0, 0] > 0
    assert torch.equal(after.masks[1] > 0, expected)


def test_without_rounds_the_prompts_are_used_as_given(monkeypatch):
    cfg = tiny_model_cfg()
    cfg.train_cfg = dict(interactive_rounds=None)
    model = MODELS.build(cfg).train()
    encoded = _spy_calls(monkeypatch, model.panoptic_head.prompt_encoder, 'forward')
    sample = packed_image()
    given = sample['data_samples'].prompts
    run_loss(model, [sample])
    assert len(encoded) == 1
    used = encoded[0][0][0][0]
    assert torch.equal(used.points, given.points) and torch.equal(used.point_labels,
                                                                  given.point_labels)
    with pytest.raises(ValueError, match='interactive_rounds.prob must be in'):
        cfg.train_cfg = dict(interactive_rounds=dict(prob=2.0))
        MODELS.build(cfg)


# ----------------------------------------------------------------------- prompts on any frame
def _clip_prompted_on(frames_gt_ids: dict, t: int = 3) -> dict:
    """A clip (objects with ids 7, 9 = target rows 0, 1) prompted only on the given frames."""
    clip = packed_clip(t=t, prompts_on_first=False)
    frames = clip['data_samples'].video_data_samples
    for frame, gt_ids in frames_gt_ids.items():
        frames[frame].prompts = build_prompts(points=[[[20, 12]]] * len(gt_ids),
                                              point_labels=[[1]] * len(gt_ids), gt_ids=gt_ids)
    return clip


def _loss_inputs(monkeypatch, model, batch) -> tuple:
    calls = _spy_calls(monkeypatch, model.panoptic_head, 'loss')
    losses = run_loss(model, batch)
    (out, targets, prompt_targets, prompts), _, _ = calls[0]
    return losses, out, prompt_targets, prompts


@pytest.mark.parametrize('stream', [False, True])
def test_a_clip_prompted_only_on_a_later_frame_trains_that_object(monkeypatch, stream):
    cfg = fastsam2_model_cfg(video=True) if stream else tiny_model_cfg()
    if not stream:
        cfg.data_preprocessor.type = VideoSegDataPreprocessor
    cfg.train_cfg = dict(interactive_rounds=None)
    model = MODELS.build(cfg).train()
    losses, out, targets, prompts = _loss_inputs(monkeypatch, model, [_clip_prompted_on({2: [1]})])
    assert targets.tolist() == [1] and prompts.frame_index.tolist() == [2]
    assert losses['loss_prompt_mask'] > 0 and losses['loss_prompt_dice'] > 0
    if stream:  # not known before its prompt: absent there, decoded from frame 2 on
        masks = out.final.prm_mask[0]
        assert (masks[:2] == rapsam_module.ABSENT_LOGIT).all()
        assert not (masks[2] == rapsam_module.ABSENT_LOGIT).any()


def test_a_later_prompt_adds_or_re_prompts_objects_in_the_stream(monkeypatch):
    cfg = fastsam2_model_cfg(video=True)
    cfg.train_cfg = dict(interactive_rounds=None)
    model = MODELS.build(cfg).train()
    steps = _spy_calls(monkeypatch, StreamingTracker, 'step')
    # frame 0: object 7 (row 0); frame 1: object 7 again and, new, object 9 (row 1)
    losses, out, targets, prompts = _loss_inputs(
        monkeypatch, model, [_clip_prompted_on({0: [0], 1: [0, 1]})])
    assert targets.tolist() == [0, 1]  # one target per object, not per prompt
    assert prompts.batch_index.tolist() == [0, 0] and prompts.frame_index.tolist() == [0, 1]
    assert [call[0][5] for call in steps] == [[0], [0, 1], []]  # the object ids given per frame
    masks = out.final.prm_mask
    assert not (masks[0] == rapsam_module.ABSENT_LOGIT).any()
    assert (masks[1, 0] == rapsam_module.ABSENT_LOGIT).all()
    assert not (masks[1, 1:] == rapsam_module.ABSENT_LOGIT).any()
    # the non-streaming path keeps every prompt row as a query of its own
    cfg = tiny_model_cfg()
    cfg.data_preprocessor.type = VideoSegDataPreprocessor
    cfg.train_cfg = dict(interactive_rounds=None)
    _, _, targets, prompts = _loss_inputs(monkeypatch, MODELS.build(cfg).train(),
                                          [_clip_prompted_on({0: [0], 1: [0, 1]})])
    assert targets.tolist() == [0, 0, 1] and prompts.frame_index.tolist() == [0, 1, 1]


def test_predict_reports_objects_prompted_on_any_frame():
    cfg = tiny_model_cfg()
    cfg.data_preprocessor.type = VideoSegDataPreprocessor
    model = MODELS.build(cfg).eval()
    clip = packed_clip(t=3)  # frame 0: objects 7 and 9 (their ground-truth ids)
    frames = clip['data_samples'].video_data_samples
    frames[2].prompts = build_prompts(points=[[[50, 40]], [[15, 12]]], point_labels=[[1], [1]])
    frames[2].prompts.obj_ids = torch.tensor([3, 7])  # a new object, and object 7 re-prompted
    with torch.no_grad():
        out = model.test_step(dict(inputs=[clip['inputs']], data_samples=[clip['data_samples']]))[0]
    assert [f.pred_instances.instances_id.tolist() for f in out] == [[7, 9, 3]] * 3
    clip = _clip_prompted_on({2: [1]})
    with torch.no_grad():
        out = model.test_step(dict(inputs=[clip['inputs']], data_samples=[clip['data_samples']]))[0]
    assert [f.pred_instances.instances_id.tolist() for f in out] == [[9]] * 3


# ------------------------------------------------------------------------ routing and scores
def test_every_routed_depth_is_trained(monkeypatch):
    cfg = fastsam2_model_cfg()
    cfg.train_cfg = dict(interactive_rounds=None)
    model = MODELS.build(cfg).train()
    assert model.prompt_exits == (1, )  # interactive runs 1 stage, vos and panoptic both
    losses = run_loss(model, [packed_image(), packed_image(prompts=False)])
    for key in ('loss_prompt_cls', 'loss_prompt_mask', 'loss_prompt_dice', 'loss_prompt_iou'):
        assert torch.isfinite(losses[f'exit1.{key}']) and torch.isfinite(losses[key])
    # clips streamed through the memory run the router's vos depth (here 1 of the 2 stages)
    cfg = fastsam2_model_cfg(video=True)
    cfg.task_router.rules.vos.num_stages = 1
    cfg.train_cfg = dict(interactive_rounds=None)
    model = MODELS.build(cfg).train()
    steps = _spy_calls(monkeypatch, StreamingTracker, 'step')
    losses = run_loss(model, [packed_clip(t=2)])
    assert steps and all(call[0][6] == 1 for call in steps)
    assert 'd0.loss_prompt_mask' in losses and 'loss_prompt_mask' in losses
    assert 'd1.loss_prompt_mask' not in losses  # stage 2 is not on the vos route


def test_prompt_scores_are_the_predicted_iou(monkeypatch):
    model = MODELS.build(tiny_model_cfg()).eval()
    calls = _spy_calls(monkeypatch, model.panoptic_head, 'forward')
    sample = packed_image(with_gt=False)
    with torch.no_grad():
        pred = model.test_step(dict(inputs=[sample['inputs']],
                                    data_samples=[sample['data_samples']]))[0].pred_instances
    iou = calls[0][2].final.prm_iou
    assert iou is not None and torch.equal(pred.scores, iou)
