"""RapSAMVideoHead: routed decoding (stages / query sets), routed prompt exits, the IoU head, the
final-step mask refiner, DPSR, training targets from data samples."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData, PixelData

from seg.models.heads import HeadOutput, StepOutput
from seg.models.heads.iou_head import grid_mask_iou
from seg.models.necks import MaskStateRefiner
from seg.registry import MODELS
from tests.test_models.tiny_cases.heads import HEAD, TEXT, C, _prompts

H = W = 32  # padded input size of the tiny prompts; features are 8x8 (stride 4)


def _head(**kwargs):
    head = MODELS.build(dict(HEAD, **kwargs))
    head.set_class_embeddings(torch.randn(head.num_classes, TEXT))
    return head.eval()


def _tokens(head, feats, mask_prompt: bool = True):
    # sample 0 has two prompted objects, sample 1 none (padding rows in the [B, N_max] layout)
    prompts = _prompts()
    if not mask_prompt:
        del prompts.masks
    return head.prompt_encoder([prompts, None], [0, 0], feats, (H, W), [torch.randn(2, TEXT), None])


def _count_calls(head) -> dict:
    """Record the query count of every call of each stage / adaptor."""
    calls = {}
    for name in ('stages.0', 'stages.1', 'panoptic_adaptor', 'prompt_adaptor'):
        calls[name] = []
        head.get_submodule(name).register_forward_hook(
            lambda m, args, out, name=name: calls[name].append(args[0].shape[1]))
    return calls


def test_forward_runs_the_requested_stages_and_query_sets_only():
    head = _head()
    feats = torch.randn(2, C, 1, 8, 8)
    tokens = _tokens(head, feats)
    calls = _count_calls(head)
    out = head(feats, tokens, run_objects=False, num_stages=1)
    # stage 0 once on the 2 prompt queries; no second stage; no panoptic adaptor
    assert calls == {'stages.0': [2], 'stages.1': [], 'panoptic_adaptor': [], 'prompt_adaptor': [2]}
    assert len(out.steps) == 2 and out.final.obj_mask is None and out.final.prm_mask.shape[0] == 2
    for v in calls.values():
        v.clear()
    head(feats, None, run_objects=True)
    assert calls == {'stages.0': [6], 'stages.1': [6], 'panoptic_adaptor': [6], 'prompt_adaptor': []}
    for v in calls.values():
        v.clear()
    out = head(feats, tokens, run_objects=True)
    assert calls == {'stages.0': [6, 2], 'stages.1': [6, 2], 'panoptic_adaptor': [6], 'prompt_adaptor': [2]}
    # the class embeddings live in the text space classify() compares with
    assert out.final.prm_cls_embed.shape == (2, TEXT) and out.final.obj_cls_embed.shape == (2, 6, TEXT)
    with pytest.raises(ValueError, match=r'num_stages must be in 1\.\.2'):
        head(feats, tokens, num_stages=3)


@pytest.mark.parametrize('objects', [False, True])
def test_refiner_is_identity_at_init_and_corrects_the_final_step_only(objects):
    head = _head(refine_object_masks=objects)
    feats = torch.randn(2, C, 3, 8, 8)
    tokens = _tokens(head, feats)
    refiner = MaskStateRefiner(feat_channels=C, hidden_channels=4)
    with torch.no_grad():
        plain = head(feats, tokens)
        refined = head(feats, tokens, mask_refiner=refiner)
        for a, b in zip(plain.steps, refined.steps):
            assert torch.equal(a.obj_mask, b.obj_mask) and torch.equal(a.prm_mask, b.prm_mask)
        # a constant correction of +1 (output conv bias) shows up on the final step, every frame and
        # every (padded-layout) prompt row, and nowhere else; on object masks only when asked for
        refiner.out_conv.bias.fill_(1.0)
        shifted = head(feats, tokens, mask_refiner=refiner)
    torch.testing.assert_close(shifted.final.obj_mask, plain.final.obj_mask + int(objects))
    torch.testing.assert_close(shifted.final.prm_mask, plain.final.prm_mask + 1)
    assert torch.equal(shifted.steps[0].prm_mask, plain.steps[0].prm_mask)


def _clip_targets(t: int, present=None) -> list:
    """Two instances per clip, the same box on every frame (``present`` [N, T] switches frames off)."""
    masks = torch.zeros(2, t, H, W, dtype=torch.bool)
    masks[0, :, 2:12, 2:14] = True
    masks[1, :, 16:30, 8:28] = True
    if present is not None:
        masks &= torch.as_tensor(present)[..., None, None]
    return [InstanceData(labels=torch.tensor([0, 3]), masks=masks) for _ in range(2)]


def test_dpsr_only_for_clips_and_zero_when_consecutive_frames_agree():
    head = _head(loss_dpsr=dict(type='DPSRLoss', lambda_mask=1.0, lambda_feat=1.0))
    head.train()
    prompt_targets = torch.tensor([0, 1])

    def losses(feats, targets):
        # no mask prompt: it would set the initial mask of its (first) frame only
        tokens = _tokens(head, feats, mask_prompt=False)
        return head.loss(head(feats, tokens), targets, prompt_targets, tokens, feats=feats)

    image = losses(torch.randn(2, C, 1, 8, 8), _clip_targets(1))
    assert not any(k.startswith('loss_dpsr') for k in image)
    # identical frames: identical masks and embeddings on consecutive frames; the Dice term is
    # then only its smoothing remainder eps / (sum p^2 + eps) (eps = 1e-3 over 64 pixels)
    frame = torch.randn(2, C, 1, 8, 8)
    same = losses(frame.expand(-1, -1, 3, -1, -1).contiguous(), _clip_targets(3))
    assert same['loss_dpsr_mask'].abs() < 2e-4 and same['loss_dpsr_feat'].abs() < 1e-8
    moving = losses(torch.randn(2, C, 3, 8, 8), _clip_targets(3))
    assert moving['loss_dpsr_mask'] > 1e-2 and moving['loss_dpsr_feat'] > 1e-3
    moving['loss_dpsr_mask'].backward()  # the current frame's prediction gets the gradient
    assert head.prompt_aggregator.out[0].weight.grad.abs().sum() > 0
    # a pair counts only where the object is visible on both frames: none is on frame 1
    gone = losses(torch.randn(2, C, 2, 8, 8), _clip_targets(2, present=[[True, False], [True, False]]))
    assert gone['loss_dpsr_mask'] == 0 and gone['loss_dpsr_feat'] == 0


def test_dpsr_needs_the_features_on_clips():
    head = _head(loss_dpsr=dict(type='DPSRLoss'))
    feats = torch.randn(2, C, 2, 8, 8)
    tokens = _tokens(head, feats)
    with pytest.raises(ValueError, match='DPSR on clips needs the neck features'):
        head.loss(head(feats, tokens), _clip_targets(2), torch.tensor([0, 1]), tokens)


def test_frame_embeddings_pool_the_feature_under_each_frame_mask():
    feat = torch.zeros(C, 2, 4, 4)
    feat[:, 0] = 1.0
    feat[:, 1, :2] = 3.0  # frame 1: top half 3, bottom half 0
    logits = torch.full((1, 2, 4, 4), -100.0)
    logits[0, :, :2] = 100.0  # the object covers the top half (8 pixels) on both frames
    emb = MODELS.get('RapSAMVideoHead').frame_embeddings(logits, feat)
    # sum over the mask / (area + 1), like the decoder stages' pooling
    torch.testing.assert_close(emb[0, 0], torch.full((C, ), 8 / 9))
    torch.testing.assert_close(emb[0, 1], torch.full((C, ), 24 / 9))


def _active_refiner() -> MaskStateRefiner:
    """A refiner that changes the masks (its output conv is zero, i.e. identity, at init)."""
    refiner = MaskStateRefiner(feat_channels=C, hidden_channels=4)
    torch.nn.init.normal_(refiner.out_conv.weight, std=0.5)
    return refiner


@pytest.mark.parametrize('prompt_refiner', [False, True])
@pytest.mark.parametrize('prompt_adaptor', ['default', None])
def test_prompt_exit_is_exactly_the_routed_inference_output_at_that_depth(prompt_adaptor,
                                                                           prompt_refiner):
    kwargs = dict(num_stages=3) if prompt_adaptor else dict(num_stages=3, prompt_adaptor=None)
    if prompt_refiner:
        kwargs['prompt_refiner'] = dict(type='PromptMaskRefiner', hidden_channels=4)
    head = _head(**kwargs)
    if prompt_refiner:  # make it change the masks (it is the identity at init)
        torch.nn.init.normal_(head.prompt_refiner.out_conv.weight, std=0.5)
    feats = torch.randn(2, C, 2, 8, 8)
    tokens = _tokens(head, feats)
    refiner = _active_refiner()
    with torch.no_grad():
        full = head(feats, tokens, mask_refiner=refiner, prompt_exits=[2, 1])
        plain = head(feats, tokens, mask_refiner=refiner)
        for d in (1, 2):
            # what the TaskRouter's inference runs when it routes prompts to d stages
            routed = head(feats, tokens, run_objects=False, num_stages=d, mask_refiner=refiner).final
            exit_d = full.exits[d]
            for name in ('prm_mask', 'prm_cls', 'prm_iou', 'prm_query', 'prm_cls_embed'):
                assert torch.equal(getattr(exit_d, name), getattr(routed, name)), (d, name)
            assert exit_d.obj_mask is None and exit_d.obj_cls is None
    # the exits are real alternatives to the final output, which they leave unchanged
    assert not torch.allclose(full.exits[1].prm_mask, full.final.prm_mask)
    assert len(full.steps) == len(plain.steps)
    for a, b in zip(full.steps, plain.steps):
        assert torch.equal(a.prm_mask, b.prm_mask) and torch.equal(a.obj_mask, b.obj_mask)


def test_exits_only_at_requested_depths_and_bad_depths_raise():
    head = _head(num_stages=3)
    feats = torch.randn(2, C, 1, 8, 8)
    tokens = _tokens(head, feats)
    adaptor_calls = []
    head.prompt_adaptor.register_forward_hook(lambda *_: adaptor_calls.append(1))
    assert set(head(feats, tokens, prompt_exits=[1]).exits) == {1}
    assert len(adaptor_calls) == 2  # the exit and the final step
    assert head(feats, tokens).exits == {}
    assert head(feats, None, prompt_exits=[1]).exits == {}  # no prompt queries: nothing to exit
    for bad in ([0], [3], [2, 4], [1.5], [True]):
        with pytest.raises(ValueError, match=r'prompt_exits must be stage depths in 1\.\.2'):
            head(feats, tokens, prompt_exits=bad)
    with pytest.raises(ValueError, match=r'prompt_exits must be stage depths in 1\.\.1'):
        head(feats, tokens, num_stages=2, prompt_exits=[2])  # depth 2 is that decode's output
    with pytest.raises(ValueError, match='a sequence of stage depths'):
        head(feats, tokens, prompt_exits=1)


def _image_loss(head, feats, **forward_kwargs):
    tokens = _tokens(head, feats, mask_prompt=False)
    out = head(feats, tokens, **forward_kwargs)
    return out, head.loss(out, _clip_targets(feats.shape[2]), torch.tensor([0, 1]), tokens, feats=feats)


def test_exit_losses_supervise_the_prompt_path_up_to_their_depth():
    head = _head(num_stages=3).train()
    _, losses = _image_loss(head, torch.randn(2, C, 1, 8, 8), prompt_exits=[1, 2])
    exit_keys = {k for k in losses if k.startswith('exit')}
    assert exit_keys == {f'exit{d}.loss_prompt_{n}' for d in (1, 2)
                         for n in ('cls', 'mask', 'dice', 'iou')}
    assert all(torch.isfinite(v) for v in losses.values())
    # the IoU is predicted on output steps only: final and exits, not the deep-supervision stages
    assert 'loss_prompt_iou' in losses and not any(k.startswith('d') and k.endswith('iou')
                                                   for k in losses)
    # exit 1 is formed after stage 1: its losses train stage 0 and the prompt adaptor, no later stage
    (losses['exit1.loss_prompt_mask'] + losses['exit1.loss_prompt_dice']).backward()
    grads = {name: any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
             for name, m in (('stage0', head.stages[0]), ('stage1', head.stages[1]),
                             ('stage2', head.stages[2]), ('adaptor', head.prompt_adaptor))}
    assert grads == dict(stage0=True, stage1=False, stage2=False, adaptor=True)


def test_iou_head_predicts_one_unit_range_score_per_prompt_and_can_be_off():
    head = _head()
    feats = torch.randn(2, C, 3, 8, 8)
    out = head(feats, _tokens(head, feats))
    iou = out.final.prm_iou
    assert iou.shape == (2, ) and ((iou >= 0) & (iou <= 1)).all()
    assert all(s.prm_iou is None for s in out.steps[:-1])
    off = _head(iou_head=None).train()
    out, losses = _image_loss(off, torch.randn(2, C, 1, 8, 8))
    assert out.final.prm_iou is None and not any('iou' in k for k in losses)
    with pytest.raises(ValueError, match=r'QueryIoUHead expects queries \[N, 16\]'):
        head.iou_head(torch.randn(2, 3, C))


def test_iou_loss_trains_the_iou_head_and_queries_but_not_the_mask_logits():
    head = _head().train()
    feats = torch.randn(2, C, 1, 8, 8)
    tokens = _tokens(head, feats, mask_prompt=False)
    out = head(feats, tokens)
    out.final.prm_mask.retain_grad()
    losses = head.loss(out, _clip_targets(1), torch.tensor([0, 1]), tokens)
    losses['loss_prompt_iou'].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.iou_head.parameters())
    # the target IoU is detached: no gradient to the mask logits or the layer that only makes them
    assert out.final.prm_mask.grad is None
    assert all(p.grad is None for p in head.prompt_adaptor.mask_embed.parameters())
    # the query is not detached (as in SAM): the decoder learns quality-aware prompt queries
    assert head.prompt_adaptor.ffn[0].weight.grad.abs().sum() > 0


def _iou_case():
    """Five objects whose predicted mask is the top half of the 8x8 grid (rows 0-3, i.e. rows 0-15
    of the 32x32 input) and whose targets overlap it by a known IoU."""
    pred = torch.full((5, 1, 8, 8), -10.0)
    pred[:, :, :4] = 10.0
    targets = torch.zeros(5, 1, H, W, dtype=torch.bool)
    for i, (r0, r1) in enumerate([(0, 16), (8, 24), (16, 32), (0, 8), (0, 14)]):
        targets[i, :, r0:r1] = True
    # |P| = 512 px; IoU = inter / (512 + |T| - inter); row 14 is not on a cell boundary
    return pred, targets, torch.tensor([1.0, 256 / 768, 0.0, 0.5, 448 / 512])


def test_grid_iou_is_the_full_resolution_iou_of_the_upsampled_prediction():
    pred, targets, known = _iou_case()
    torch.testing.assert_close(grid_mask_iou(pred, targets), known)
    # random masks over clip frames, against the brute-force full-resolution IoU
    pred = torch.randn(4, 3, 8, 8)
    targets = torch.rand(4, 3, H, W) > 0.6
    up = (pred > 0).repeat_interleave(4, dim=-2).repeat_interleave(4, dim=-1)
    inter = (up & targets).flatten(1).sum(1).float()
    union = (up | targets).flatten(1).sum(1).float()
    torch.testing.assert_close(grid_mask_iou(pred, targets), inter / union)
    # nothing predicted and nothing to find is a perfect answer
    assert grid_mask_iou(torch.full((1, 2, 8, 8), -1.0), torch.zeros(1, 2, H, W)).item() == 1.0
    with pytest.raises(ValueError, match='must share N and T'):
        grid_mask_iou(pred, targets[:, :2])


def test_iou_head_trained_alone_calibrates_to_the_mask_iou():
    torch.manual_seed(0)
    head = _head().train()
    pred, target_masks, known = _iou_case()
    queries = torch.randn(5, C)
    targets = [InstanceData(labels=torch.zeros(5, dtype=torch.long), masks=target_masks)]
    prompts = SimpleNamespace(batch_index=torch.zeros(5, dtype=torch.long))  # all loss() reads
    cls = torch.randn(5, head.num_classes + 1)
    opt = torch.optim.Adam(head.iou_head.parameters(), lr=3e-3)

    def iou_loss():
        step = StepOutput(prm_cls=cls, prm_mask=pred, prm_query=queries,
                          prm_iou=head.iou_head(queries))
        return head.loss(HeadOutput(steps=[step]), targets, torch.arange(5), prompts)['loss_prompt_iou']

    before = (head.iou_head(queries) - known).abs().mean().item()
    for _ in range(300):
        opt.zero_grad()
        iou_loss().backward()
        opt.step()
    with torch.no_grad():
        err = (head.iou_head(queries) - known).abs()
    assert before > 0.15 and err.max() < 0.05, (before, err)


# ------------------------------------------------------------------------------------- targets
def _gt_frame(ids, labels, boxes, path='f.jpg') -> DetDataSample:
    """A padded frame (``batch_input_shape`` H x W) with one box mask per instance."""
    m = np.zeros((len(ids), H, W), np.uint8)
    for k, (y0, y1, x0, x1) in enumerate(boxes):
        m[k, y0:y1, x0:x1] = 1
    s = DetDataSample(metainfo=dict(img_path=path, batch_input_shape=(H, W)))
    s.gt_instances = InstanceData(labels=torch.tensor(labels), masks=BitmapMasks(m, H, W),
                                  instances_ids=torch.tensor(ids))
    return s


def test_image_targets_are_the_things_then_each_stuff_label_in_ascending_order():
    head = _head()  # things 0..2, stuff 3..4
    sample = _gt_frame([7, 8], [1, 0], [(0, 4, 0, 4), (10, 20, 10, 20)])
    sem = torch.full((1, H, W), 255, dtype=torch.long)  # void
    sem[0, 20:, :] = 4
    sem[0, :8, 16:] = 3
    sem[0, 10:20, 10:20] = 0  # a thing label: the thing comes from gt_instances, not from here
    sem[0, 30:, 30:] = 9  # outside the head's classes: ignored
    sample.gt_sem_seg = PixelData(sem_seg=sem)
    (tgt, ), ((rows, ), ) = head.preprocess_gt([[sample]], (H, W), torch.device('cpu'))
    assert tgt.labels.tolist() == [1, 0, 3, 4] and tgt.masks.shape == (4, 1, H, W)
    assert tgt.masks.dtype == torch.bool
    assert torch.equal(tgt.masks[:2, 0], sample.gt_instances.masks.to_tensor(torch.bool, 'cpu'))
    assert torch.equal(tgt.masks[2, 0], sem[0] == 3) and torch.equal(tgt.masks[3, 0], sem[0] == 4)
    assert rows.tolist() == [0, 1, 2, 3]
    # prompts index these rows through the frame's row map; -1 is a prompt drawn from no segment
    assert head.prompt_targets(torch.tensor([3, -1, 0]), rows, sample).tolist() == [3, -1, 0]
    with pytest.raises(ValueError, match=r'gt_ids \[4\] of f\.jpg point past the 4'):
        head.prompt_targets(torch.tensor([4]), rows, sample)


def test_clip_targets_have_one_row_per_object_id_in_order_of_first_appearance():
    head = _head()
    box = {5: (0, 4, 0, 4), 9: (8, 12, 8, 12), 2: (20, 30, 0, 10)}
    label = {5: 1, 9: 2, 2: 0}
    clip = [_gt_frame(ids, [label[i] for i in ids], [box[i] for i in ids], f'{t}.jpg')
            for t, ids in enumerate([[5, 9], [9], [2, 5]])]
    (tgt, ), (maps, ) = head.preprocess_gt([clip], (H, W), torch.device('cpu'))
    assert tgt.labels.tolist() == [1, 2, 0] and tgt.masks.shape == (3, 3, H, W)
    assert [m.tolist() for m in maps] == [[0, 1], [1], [2, 0]]
    present = tgt.masks.flatten(2).any(-1)  # object 9 is gone on frame 2, object 2 new there
    assert present.tolist() == [[True, False, True], [True, True, False], [False, False, True]]
    y0, y1, x0, x1 = box[2]
    assert tgt.masks[2, 2].sum() == (y1 - y0) * (x1 - x0) and tgt.masks[2, 2, y0:y1, x0:x1].all()
    # frame 2's prompt on its segment 0 (object 2) is target row 2
    assert head.prompt_targets(torch.tensor([0, 1]), maps[2], clip[2]).tolist() == [2, 0]


def test_targets_reject_frames_without_ids_and_masks_not_padded_to_the_input():
    head = _head()
    frame = _gt_frame([1], [0], [(0, 4, 0, 4)], 'no_ids.jpg')
    del frame.gt_instances.instances_ids
    with pytest.raises(KeyError, match='no_ids.jpg has no gt_instances.instances_ids'):
        head.preprocess_gt([[_gt_frame([1], [0], [(0, 4, 0, 4)]), frame]], (H, W),
                           torch.device('cpu'))
    with pytest.raises(ValueError, match=r'masks \(32, 32\) do not match the batch input \(64, 32\)'):
        head.preprocess_gt([[_gt_frame([1], [0], [(0, 4, 0, 4)])]], (64, 32), torch.device('cpu'))
