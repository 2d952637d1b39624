import copy

import numpy as np
import pytest
import torch
from mmdet.evaluation import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from torch import nn

import seg  # noqa: F401
from seg.models.backbones.modules import TokenPruner
from seg.models.necks import MaskStateRefiner
from seg.models.utils import LowRankMHSA, PromptFusion, RegionalFeatures, RouteDecision, TaskRouter
from seg.registry import DATASETS, MODELS
from seg.structures import build_prompts
from tests.conftest import REPO_ROOT
from tests.test_models.tiny_cases.detectors import (
    TINY_CFG,
    fastsam2_model_cfg,
    packed_clip,
    packed_image,
    run_loss,
    tiny_model_cfg,
)


@pytest.fixture(scope='module')
def model():
    cfg = tiny_model_cfg()
    cfg.test_cfg.update(object_mask_thr=0.0, instance_on=True)  # random weights: keep every segment
    return MODELS.build(cfg).eval()


def _predict(model, batch):
    with torch.no_grad():
        return model.test_step(dict(inputs=[b['inputs'] for b in batch],
                                    data_samples=[b['data_samples'] for b in batch]))


def test_panoptic_output_has_mmdet_layout(model):
    sample = packed_image(h=40, w=56, with_gt=False, prompts=False)
    sample['data_samples'].set_metainfo(dict(ori_shape=(80, 112), scale_factor=(0.5, 0.5)))
    out = _predict(model, [sample])[0]
    pan = out.pred_panoptic_seg.sem_seg
    assert pan.shape == (1, 80, 112)  # original resolution
    labels = pan % INSTANCE_OFFSET
    num_classes = model.panoptic_head.num_classes
    assert ((labels < num_classes) | (labels == num_classes)).all()  # num_classes = void
    things = pan[(labels < model.panoptic_head.num_things_classes)]
    stuff = pan[(labels >= model.panoptic_head.num_things_classes) & (labels < num_classes)]
    assert (things // INSTANCE_OFFSET > 0).all()  # thing segments carry an instance id
    assert (stuff // INSTANCE_OFFSET == 0).all()  # stuff segments do not
    assert len(pan.unique()) > 1
    assert out.pred_instances.masks.shape[-2:] == (80, 112)


def test_interactive_one_mask_per_prompt_at_input_resolution(model):
    sample = packed_image(h=48, w=64, with_gt=False)
    sample['data_samples'].set_metainfo(dict(ori_shape=(96, 128), scale_factor=(0.5, 0.5)))
    other = packed_image(h=48, w=64, with_gt=False, prompts=False)
    out = _predict(model, [sample, other])
    pred = out[0].pred_instances
    assert len(pred) == 2  # one per prompted object
    assert pred.masks.shape == (2, 96, 128) and pred.masks.dtype == torch.bool
    assert torch.equal(pred.masks, pred.mask_logits > 0)
    assert (pred.scores >= 0).all() and (pred.scores <= 1).all()
    # the unprompted image of the same batch still gets a panoptic result
    assert out[1].pred_panoptic_seg.sem_seg.shape == (1, 48, 64)


def test_prompt_result_does_not_depend_on_batch_mates(model):
    """Padding prompt queries of a batch mate with fewer prompts must not leak into a sample."""
    torch.manual_seed(0)
    a = packed_image(with_gt=False)
    torch.manual_seed(0)
    b = packed_image(with_gt=False)
    torch.manual_seed(5)
    mate = packed_image(with_gt=False)
    mate['data_samples'].prompts = mate['data_samples'].prompts[:1]
    alone = _predict(model, [a])[0].pred_instances.mask_logits
    batched = _predict(model, [b, mate])[0].pred_instances.mask_logits
    assert torch.allclose(alone, batched, atol=1e-4)


def test_video_clip_gives_consistent_ids_over_frames(model):
    clip = packed_clip(t=3, prompts_on_first=False)
    vmodel = copy.deepcopy(model)
    vmodel.data_preprocessor = MODELS.build(dict(type='VideoSegDataPreprocessor', pad_size_divisor=32))
    out = _predict(vmodel, [clip])[0]
    ids = [f.pred_track_instances.instances_id for f in out]
    assert all(torch.equal(ids[0], i) for i in ids)
    # every (query, class) pair is a track of its own: the YouTube-VIS metric groups by id
    assert len(ids[0]) > 1 and len(set(ids[0].tolist())) == len(ids[0])
    for f in out:
        pred = f.pred_track_instances
        assert pred.masks.shape[-2:] == (48, 64) and pred.bboxes.shape == (len(ids[0]), 4)
        for mask, box in zip(pred.masks, pred.bboxes):
            if mask.any():
                ys, xs = mask.nonzero(as_tuple=True)
                assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            else:
                assert not box.any()
    # with a prompt on the first frame, each prompted object is segmented on every frame
    out = _predict(vmodel, [packed_clip(t=3, prompts_on_first=True)])[0]
    assert [len(f.pred_instances) for f in out] == [2, 2, 2]


def test_training_losses_are_finite_and_cover_both_query_sets(model):
    model.train()
    losses = run_loss(model, [packed_image(), packed_image(prompts=False)])
    model.eval()
    for key in ('loss_cls', 'loss_mask', 'loss_dice', 'loss_prompt_mask', 'loss_prompt_dice',
                'loss_prompt_cls', 'd0.loss_cls'):
        assert key in losses and torch.isfinite(losses[key])


def test_instance_results_with_fewer_candidates_than_max_per_image():
    cfg = tiny_model_cfg()
    cfg.panoptic_head.num_queries = 2
    cfg.test_cfg.update(instance_on=True, max_per_image=1000)
    model = MODELS.build(cfg).eval()
    assert model.panoptic_fusion_head.test_cfg['max_per_image'] == 2 * 133
    out = _predict(model, [packed_image(with_gt=False, prompts=False)])[0]
    # the top 266 (query, class) pairs, of which mmdet keeps the thing classes
    assert 0 < len(out.pred_instances) <= 2 * 133
    assert (out.pred_instances.labels < 80).all()


def test_class_count_mismatch_is_a_clear_error():
    cfg = tiny_model_cfg()
    cfg.class_names = cfg.class_names[:10]
    with pytest.raises(ValueError, match='class_names'):
        MODELS.build(cfg)


def test_real_coco_panoptic_sample_through_dataset_and_model(model, shared_data):
    cfg = Config.fromfile(str(TINY_CFG))
    root = shared_data / 'coco_panoptic_sample'
    results = {}
    for name, pipeline in (('train', cfg.train_pipeline), ('test', cfg.test_pipeline)):
        ds_cfg = copy.deepcopy(cfg.val_dataloader.dataset)
        ds_cfg.update(data_root=str(root), ann_file='panoptic_examples.json', test_mode=False,
                      data_prefix=dict(img='input_images/', seg='panoptic_examples/'), pipeline=pipeline)
        results[name] = DATASETS.build(ds_cfg)
    assert len(results['test']) == 2
    batch = pseudo_collate([results['train'][0], results['train'][1]])
    assert all('prompts' in s and len(s.prompts) > 0 for s in batch['data_samples'])
    model.train()
    data = model.data_preprocessor(batch, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    model.eval()
    assert all(torch.isfinite(v) for v in losses.values())
    out = model.test_step(pseudo_collate([results['test'][0], results['test'][1]]))
    for s in out:
        assert s.pred_panoptic_seg.sem_seg.shape[-2:] == tuple(s.ori_shape)


# ---------------------------------------------------------------------------------------------------
# FastSAM2 switches: TaskRouter, mask refiner, streaming-memory VOS, DPSR, configs
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def fastsam2():
    return MODELS.build(fastsam2_model_cfg()).eval()


@pytest.fixture(scope='module')
def fastsam2_video():
    return MODELS.build(fastsam2_model_cfg(video=True)).eval()


def _spy_decoder(model) -> dict:
    """Per stage / adaptor / pruner: the query count (pruner: token count) of every call."""
    calls = {}
    head = model.panoptic_head
    modules = {'stage0': head.stages[0], 'stage1': head.stages[1], 'panoptic_adaptor': head.panoptic_adaptor,
               'prompt_adaptor': head.prompt_adaptor, 'pruner': model.backbone.token_pruner}
    handles = []
    for name, module in modules.items():
        calls[name] = []
        handles.append(module.register_forward_hook(
            lambda m, args, out, name=name: calls[name].append(args[0].shape[1])))
    calls['_handles'] = handles
    return calls


def _unspy(calls: dict) -> dict:
    for h in calls.pop('_handles'):
        h.remove()
    return calls


def _spy_router(model, monkeypatch) -> list:
    routed = []
    original = model.task_router.route

    def route(mode, types, num_frames=1):
        routed.append((mode, set(types), num_frames))
        return original(mode, types, num_frames)

    monkeypatch.setattr(model.task_router, 'route', route)
    return routed


def test_router_once_per_forward_and_the_head_runs_what_it_decided(fastsam2, fastsam2_video, monkeypatch):
    routed = _spy_router(fastsam2, monkeypatch)
    # interactive image (auto): 2 prompt queries, 1 stage, no pruning (the default rules)
    calls = _spy_decoder(fastsam2)
    out = _predict(fastsam2, [packed_image(with_gt=False)])[0]
    assert routed == [('interactive', {'point', 'box', 'mask', 'text'}, 1)]
    assert fastsam2.last_decision == RouteDecision(1, 'prompt', False, False)
    assert _unspy(calls) == {'stage0': [2], 'stage1': [], 'panoptic_adaptor': [], 'prompt_adaptor': [2],
                             'pruner': []}
    assert len(out.pred_instances) == 2
    # panoptic image: the 10 object queries, both stages, no pruning
    calls = _spy_decoder(fastsam2)
    out = _predict(fastsam2, [packed_image(with_gt=False, prompts=False)])[0]
    assert routed[-1] == ('panoptic', set(), 1)
    assert fastsam2.last_decision == RouteDecision(2, 'object', False, False)
    assert _unspy(calls) == {'stage0': [10], 'stage1': [10], 'panoptic_adaptor': [10], 'prompt_adaptor': [],
                             'pruner': []}
    assert 'pred_panoptic_seg' in out
    # a batch mixing both: panoptic routing runs both query sets
    calls = _spy_decoder(fastsam2)
    _predict(fastsam2, [packed_image(with_gt=False), packed_image(with_gt=False, prompts=False)])
    assert fastsam2.last_decision.query_set == 'both'
    assert _unspy(calls)['stage0'] == [10, 2]
    assert len(routed) == 3  # once per forward

    # VOS clip: the router is asked once, then the clip streams frame by frame (prompt queries)
    routed = _spy_router(fastsam2_video, monkeypatch)
    calls = _spy_decoder(fastsam2_video)
    _predict(fastsam2_video, [packed_clip(t=3)])
    assert routed == [('vos', {'point', 'box', 'mask', 'text'}, 3)]
    assert fastsam2_video.last_decision == RouteDecision(2, 'prompt', True, False)
    calls = _unspy(calls)
    assert calls['stage0'] == calls['stage1'] == calls['prompt_adaptor'] == [2, 2, 2]
    assert calls['panoptic_adaptor'] == [] and calls['pruner'] == []


def test_pruner_token_count_follows_the_route(fastsam2):
    """Where a rule turns it on (off by default, see TaskRouter), the pruner scores the stride-16
    tokens of each frame (4x4 for 64x64 inputs); pruning stays off for panoptic routing."""
    fastsam2 = copy.deepcopy(fastsam2)
    fastsam2.task_router.rules['interactive']['use_pruner'] = True
    pruner = fastsam2.backbone.token_pruner
    assert isinstance(pruner, TokenPruner)
    pruner.last_keep_idx = None
    _predict(fastsam2, [packed_image(with_gt=False, prompts=False)])
    assert pruner.last_keep_idx is None
    _predict(fastsam2, [packed_image(with_gt=False)])
    assert pruner.last_keep_idx.shape == (1, pruner.num_kept(16)) == (1, 8)


def test_explicit_modes(fastsam2):
    model = copy.deepcopy(fastsam2)
    model.mode = 'panoptic'  # prompts on a panoptic image add their queries
    out = _predict(model, [packed_image(with_gt=False)])[0]
    assert model.last_decision == RouteDecision(2, 'both', False, False) and len(out.pred_instances) == 2
    model.mode = 'interactive'
    with pytest.raises(ValueError, match=r'runs the prompt queries only, but sample\(s\) \[1\]'):
        _predict(model, [packed_image(with_gt=False), packed_image(with_gt=False, prompts=False)])
    model.mode = 'tracking'
    with pytest.raises(ValueError, match="unknown mode 'tracking'"):
        _predict(model, [packed_image(with_gt=False)])


def test_baseline_routes_to_the_full_model(model):
    _predict(model, [packed_image(with_gt=False), packed_image(with_gt=False, prompts=False)])
    assert model.last_decision == RouteDecision(2, 'both', False, True)
    _predict(model, [packed_image(with_gt=False)])
    assert model.last_decision == RouteDecision(2, 'prompt', False, True)
    with pytest.raises(RuntimeError, match='streaming VOS is off'):
        model.new_tracker()


def test_router_rules_must_fit_the_head():
    cfg = fastsam2_model_cfg()
    cfg.task_router.rules.vos.num_stages = 3
    with pytest.raises(ValueError, match=r"more decoder stages than the head has \(2\): \{'vos': 3\}"):
        MODELS.build(cfg)


def test_mask_refiner_is_the_identity_at_init_then_corrects_the_final_masks():
    cfg = tiny_model_cfg()
    cfg.test_cfg.update(object_mask_thr=0.0)
    cfg.mask_refiner = dict(type='MaskStateRefiner', feat_channels=32, hidden_channels=4)
    refined = MODELS.build(cfg).eval()
    plain = copy.deepcopy(refined)
    plain.mask_refiner = None
    batch = [packed_image(with_gt=False), packed_image(with_gt=False, prompts=False)]
    a = _predict(refined, copy.deepcopy(batch))
    b = _predict(plain, copy.deepcopy(batch))
    assert torch.equal(a[0].pred_instances.mask_logits, b[0].pred_instances.mask_logits)
    assert torch.equal(a[1].pred_panoptic_seg.sem_seg, b[1].pred_panoptic_seg.sem_seg)
    with torch.no_grad():
        refined.mask_refiner.out_conv.bias.fill_(2.0)  # +2 on every logit (feature resolution)
    c = _predict(refined, copy.deepcopy(batch))
    torch.testing.assert_close(c[0].pred_instances.mask_logits, b[0].pred_instances.mask_logits + 2)


def test_vos_clip_streams_with_davis_ids_and_objects_added_later(fastsam2_video):
    clip = packed_clip(t=4)  # frame 0 prompts two objects drawn from gt instances with ids 7 and 9
    frames = clip['data_samples'].video_data_samples
    frames[2].prompts = build_prompts(points=[[[50, 40]]], point_labels=[[1]])
    frames[2].prompts.obj_ids = torch.tensor([3])
    out = _predict(fastsam2_video, [clip])[0]
    ids = [f.pred_instances.instances_id.tolist() for f in out]
    assert ids == [[7, 9], [7, 9], [7, 9, 3], [7, 9, 3]]
    for f in out:
        pred = f.pred_instances
        assert pred.masks.shape[1:] == (48, 64) and torch.equal(pred.masks, pred.mask_logits > 0)
    # without obj_ids or ground truth, new objects get the next free ids
    clip = packed_clip(t=2)
    for f in clip['data_samples'].video_data_samples:
        del f.gt_instances
    out = _predict(fastsam2_video, [clip])[0]
    assert [f.pred_instances.instances_id.tolist() for f in out] == [[1, 2], [1, 2]]


def _track(model, tracker, step, frame, prompts=None, sample=None):
    """One raw frame through ``preprocess_frame`` + ``track_step``."""
    sample = sample if sample is not None else DetDataSample()
    if prompts is not None:
        sample.prompts = prompts
    with torch.no_grad():
        inputs, sample = model.preprocess_frame(frame, sample)
        return model.track_step(tracker, inputs, sample, step)


def test_track_step_stream(fastsam2):
    model = copy.deepcopy(fastsam2)
    model.task_router.rules['vos']['use_pruner'] = True  # off by default; its cached scores are checked
    tracker = model.new_tracker()
    frame = lambda: packed_image(with_gt=False, prompts=False)['inputs']  # noqa: E731
    pruner = model.backbone.token_pruner
    first = _track(model, tracker, 0, frame())  # nothing prompted yet
    assert len(first) == 0 and first.masks.shape == (0, 48, 64)
    res = _track(model, tracker, 1, frame(), build_prompts(points=[[[15, 12]]], point_labels=[[1]]))
    assert res.instances_id.tolist() == [1] and res.masks.shape == (1, 48, 64)
    scored = [pruner.last_scored]
    memory = tracker.memory
    caps = dict(long=memory.long_capacity, short=memory.short_capacity)
    for t in range(2, 40):
        prompts = None
        if t == 10:
            prompts = build_prompts(bboxes=[[30, 25, 60, 45]])
        res = _track(model, tracker, t, frame(), prompts)
        scored.append(pruner.last_scored)
        if t == 20:
            tracker.remove_object(1)
        expected = [1] if t < 10 else [1, 2] if t <= 20 else [2]
        assert res.instances_id.tolist() == expected
        for obj in tracker.object_ids:
            counts = memory.num_entries(obj)
            assert counts['long'] <= caps['long'] and counts['short'] <= caps['short']
    # the pruner rescored every refresh_period frames of the stream, reused its scores in between
    period = pruner.refresh_period
    assert scored == [i % period == 0 for i in range(len(scored))]
    # the pruner's cache is the tracker's: a new video starts fresh, the old one continues
    other = model.new_tracker()
    _track(model, other, 0, frame(), build_prompts(points=[[[15, 12]]], point_labels=[[1]]))
    assert pruner.last_scored and other.object_ids == [1]
    _track(model, tracker, 40, frame())
    assert pruner.last_scored == (len(scored) % period == 0)
    with pytest.raises(ValueError, match='does not come after frame 40'):
        _track(model, tracker, 40, frame())


def test_track_step_reprompts_the_last_frame(fastsam2):
    model, tracker = fastsam2, fastsam2.new_tracker()
    frame = packed_image(with_gt=False, prompts=False)['inputs']
    click = build_prompts(points=[[[15, 12]]], point_labels=[[1]])
    _track(model, tracker, 0, frame, click)
    _track(model, tracker, 1, frame, build_prompts(bboxes=[[30, 25, 60, 45]]))
    for _ in range(2 * tracker.memory.long_capacity):  # clicks on one frame replace each other
        sample = DetDataSample()
        sample.prompts = copy.deepcopy(click)
        sample.prompts.obj_ids = torch.tensor([1])
        with torch.no_grad():
            inputs, sample = model.preprocess_frame(frame, sample)
            res = model.track_step(tracker, inputs, sample, 1, track_others=False)
        assert res.instances_id.tolist() == [1]  # object 2 is not decoded again
    assert tracker.memory.num_entries(1)['long'] == 2 and tracker.object_ids == [1, 2]


def test_track_step_through_the_video_preprocessor(fastsam2_video):
    tracker = fastsam2_video.new_tracker()
    sample = packed_image(h=40, w=56, with_gt=False)['data_samples']
    sample.set_metainfo(dict(ori_shape=(80, 112), scale_factor=(0.5, 0.5)))
    frame = packed_image(h=40, w=56, with_gt=False, prompts=False)['inputs']
    res = _track(fastsam2_video, tracker, 0, frame, sample=sample)
    assert res.instances_id.tolist() == [1, 2] and res.masks.shape == (2, 80, 112)
    assert _track(fastsam2_video, tracker, 1, frame).masks.shape == (2, 40, 56)  # default: frame size


def test_language_guard_in_the_stream(fastsam2):
    model = copy.deepcopy(fastsam2)
    for thr, text_entries in ((1.0, 1), (-1.0, 5)):
        model.memory_cfg.update(text_sim_thr=thr, short_capacity=4, key_frame_interval=100)
        tracker = model.new_tracker()
        prompts = build_prompts(points=[[[15, 12]], [[40, 40]]], point_labels=[[1], [1]],
                                texts=['person', ''])
        _track(model, tracker, 0, packed_image(with_gt=False, prompts=False)['inputs'], prompts)
        for t in range(1, 6):
            _track(model, tracker, t, packed_image(with_gt=False, prompts=False)['inputs'])
        # object 1 has a text: a threshold of 1 rejects every update; object 2 has none
        assert len(tracker.memory.fetch(10)[1].frame_ids) == text_entries
        assert len(tracker.memory.fetch(10)[2].frame_ids) == 5


def test_training_on_clips_streams_prompts_through_the_memory_and_adds_dpsr(fastsam2, fastsam2_video):
    image_losses = run_loss(copy.deepcopy(fastsam2).train(), [packed_image(), packed_image(prompts=False)])
    assert not any(k.startswith('loss_dpsr') for k in image_losses)
    model = copy.deepcopy(fastsam2_video).train()
    reads = []
    original = model.panoptic_head.read_memory
    model.panoptic_head.read_memory = lambda *a: reads.append(a[0].shape[0]) or original(*a)
    losses = run_loss(model, [packed_clip(t=3), packed_clip(t=3)])
    assert reads == [2, 2, 2, 2]  # frames 1 and 2 of each clip read the memory of its 2 objects
    for key in ('loss_dpsr_mask', 'loss_dpsr_feat', 'loss_prompt_mask', 'loss_cls', 'd0.loss_prompt_dice'):
        assert key in losses and torch.isfinite(losses[key])
    sum(losses.values()).backward()
    assert model.panoptic_head.memory_reader.out_proj.weight.grad.abs().sum() > 0


def test_fastsam2_configs_switch_everything_on_and_baselines_keep_it_off():
    for name in ('tiny', 'r50', 'convnext_l'):
        cfg = Config.fromfile(str(REPO_ROOT / f'configs/fastsam2/model_fastsam2_{name}.py')).model
        for key in ('geom_branch', 'token_fusion', 'token_pruner'):
            assert cfg.backbone.get(key) is not None, (name, key)
        # low-rank attention where the keys are many (geometry tokens), exact over the queries
        assert cfg.backbone.token_fusion.attention.type is LowRankMHSA
        assert cfg.neck.conv_type == 'separable' and cfg.neck.fuse == 'sum1x1'
        head = cfg.panoptic_head
        assert head.get('attention') is None and head.prompt_aggregator.type is PromptFusion
        assert head.memory_reader is not None and head.loss_dpsr is not None
        assert head.multimask_decoder is not None
        assert cfg.task_router.type is TaskRouter and cfg.memory is not None
        assert cfg.regional_features.type is RegionalFeatures
        assert cfg.mask_refiner.type is MaskStateRefiner
        assert cfg.mask_refiner.feat_channels == cfg.neck.hidden_dim
    for name in ('rapsam_tiny_coco_panoptic', 'rapsam_r50_90k_coco_panoptic',
                 'rapsam_convnext_l_90k_coco_panoptic'):
        cfg = Config.fromfile(str(REPO_ROOT / f'configs/rapsam/{name}.py')).model
        assert not any(cfg.backbone.get(k) for k in ('geom_branch', 'token_fusion', 'token_pruner'))
        assert not any(cfg.get(k) for k in ('task_router', 'memory', 'mask_refiner',
                                            'regional_features'))
        assert not any(cfg.panoptic_head.get(k) for k in ('attention', 'prompt_aggregator',
                                                          'memory_reader', 'loss_dpsr',
                                                          'multimask_decoder'))
        assert cfg.neck.get('conv_type', 'deformable') == 'deformable'
    # the tiny one builds with every module in place
    model = MODELS.build(fastsam2_model_cfg())
    head = model.panoptic_head
    assert isinstance(head.stages[0].self_attn, nn.MultiheadAttention)
    assert isinstance(model.backbone.token_fusion.sem_queries_geom.attn, LowRankMHSA)
    assert isinstance(model.regional_features, RegionalFeatures)
    assert isinstance(head.prompt_aggregator, PromptFusion)
    assert isinstance(model.backbone.token_pruner, TokenPruner)
    assert isinstance(model.mask_refiner, MaskStateRefiner) and head.loss_dpsr is not None


def test_predictor_path_runs_the_fastsam2_config():
    """What ``SegPredictor`` does: original-pixel prompts, on-device resize, ``test_step``."""
    cfg = fastsam2_model_cfg()
    cfg.data_preprocessor.resize_longest_side = 64
    cfg.test_cfg.update(object_mask_thr=0.0)
    model = MODELS.build(cfg).eval()
    img = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (3, 60, 90), dtype=np.uint8))

    def run(prompts):
        sample = DetDataSample(metainfo=dict(img_shape=(60, 90), ori_shape=(60, 90),
                                             scale_factor=(1.0, 1.0)))
        if prompts is not None:
            sample.prompts = prompts
        with torch.no_grad():
            return model.test_step(dict(inputs=[img], data_samples=[sample]))[0]

    res = run(build_prompts(points=[[(45, 30)]], point_labels=[[1]]))
    assert res.pred_instances.masks.shape == (1, 60, 90)
    assert model.last_decision == RouteDecision(1, 'prompt', False, False)
    assert run(None).pred_panoptic_seg.sem_seg.shape == (1, 60, 90)


def test_prompt_queries_learn_to_segment_the_prompted_object():
    """Overfitting one image: the clicked/boxed object's mask, not its neighbour's (a wrong prompt
    frame, scaling or gt_ids mapping would send the prompt to the wrong segment)."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg())
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), 1e-3))
    sample = packed_image(h=64, w=64)
    for _ in range(100):
        model.train_step(dict(inputs=[sample['inputs']],
                              data_samples=[copy.deepcopy(sample['data_samples'])]),
                         optim)
    model.eval()
    gt = sample['data_samples'].gt_instances.masks.to_ndarray().astype(bool)
    pred = _predict(model, [dict(sample, data_samples=copy.deepcopy(sample['data_samples']))])[0]
    mask = pred.pred_instances.masks[0].numpy()
    iou = lambda a, b: (a & b).sum() / max((a | b).sum(), 1)  # noqa: E731
    assert iou(mask, gt[0]) > 0.9 and iou(mask, gt[1]) == 0
