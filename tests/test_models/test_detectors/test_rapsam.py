import copy

import pytest
import torch
from mmdet.evaluation import INSTANCE_OFFSET
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

import seg  # noqa: F401
from seg.registry import DATASETS, MODELS
from tests.test_models.tiny_cases.detectors import (TINY_CFG, packed_clip, packed_image, run_loss,
                                                    tiny_model_cfg)


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
    assert all(f.pred_track_instances.masks.shape[-2:] == (48, 64) for f in out)
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
