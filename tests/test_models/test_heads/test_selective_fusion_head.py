"""SelectiveFusionHead: the same panoptic and instance results as mmdet's MaskFormerFusionHead on
every mask upsampled, while upsampling only the masks it keeps."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample

from seg.models.heads import selective_fusion_head
from seg.registry import MODELS

THINGS, STUFF, Q = 3, 2, 12


def _heads(**test_cfg):
    test_cfg = dict(dict(panoptic_on=True, instance_on=True, max_per_image=20, iou_thr=0.5,
                         object_mask_thr=0.5, filter_low_score=True), **test_cfg)
    cfg = dict(num_things_classes=THINGS, num_stuff_classes=STUFF, test_cfg=test_cfg)
    return (MODELS.build(dict(cfg, type='mmdet.MaskFormerFusionHead')),
            MODELS.build(dict(cfg, type='SelectiveFusionHead', chunk=3)))


def _inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    cls = torch.randn(Q, THINGS + STUFF + 1, generator=g) * 3
    masks = torch.randn(Q, 10, 12, generator=g) * 4
    sample = DetDataSample(metainfo=dict(img_shape=(37, 45), ori_shape=(74, 91)))
    return cls, masks, sample


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('rescale', [True, False])
def test_equals_mmdet_fusion_on_fully_upsampled_masks(seed, rescale):
    mmdet_head, head = _heads()
    cls, masks, sample = _inputs(seed)
    full = F.interpolate(masks[None], size=(40, 48), mode='bilinear', align_corners=False)
    want = mmdet_head.predict(cls[None], full, [sample], rescale=rescale)[0]
    got = head.predict_grid(cls, masks, sample, (40, 48), rescale)
    assert torch.equal(got['pan_results'].sem_seg, want['pan_results'].sem_seg)
    assert (want['pan_results'].sem_seg != THINGS + STUFF).any()  # something was kept
    w, g = want['ins_results'], got['ins_results']
    # mmdet's top-k is unsorted: compare instances as sets of (label, score, mask)
    order_w = torch.argsort(w.scores * 1000 + w.labels)
    order_g = torch.argsort(g.scores * 1000 + g.labels)
    assert len(g) == len(w) > 0
    assert torch.equal(g.labels[order_g], w.labels[order_w])
    torch.testing.assert_close(g.scores[order_g], w.scores[order_w])
    assert torch.equal(g.masks[order_g], w.masks[order_w])
    assert torch.equal(g.bboxes[order_g], w.bboxes[order_w])


def test_upsamples_only_the_kept_queries(monkeypatch):
    _, head = _heads()
    head.test_cfg['instance_on'] = False
    cls, masks, sample = _inputs(0)
    keep = (cls.softmax(-1).max(-1).values > 0.5) & (cls.argmax(-1) != THINGS + STUFF)
    seen = []
    original = selective_fusion_head.SelectiveFusionHead._upsample
    monkeypatch.setattr(selective_fusion_head.SelectiveFusionHead, '_upsample', staticmethod(
        lambda logits, *a: seen.append(len(logits)) or original(logits, *a)))
    head.predict_grid(cls, masks, sample, (40, 48), True)
    assert seen == [int(keep.sum())] and 0 < seen[0] < Q


def test_rejects_mismatched_inputs_and_semantic_output():
    _, head = _heads()
    cls, masks, sample = _inputs(0)
    with pytest.raises(ValueError, match='same Q'):
        head.predict_grid(cls[:3], masks, sample, (40, 48), True)
    _, head = _heads(semantic_on=True)
    with pytest.raises(ValueError, match='semantic'):
        head.predict_grid(cls, masks, sample, (40, 48), True)


def test_nothing_kept_gives_a_void_panoptic_map_and_no_instances():
    _, head = _heads(object_mask_thr=1.0)
    cls, masks, sample = _inputs(0)
    cls[:, :THINGS] = -10  # no thing scores above the stuff ones: no instance either
    head.test_cfg['max_per_image'] = 3
    res = head.predict_grid(cls, masks, sample, (40, 48), True)
    assert res['pan_results'].sem_seg.shape == (1, 74, 91)
    assert (res['pan_results'].sem_seg == THINGS + STUFF).all()
    assert len(res['ins_results']) == 0 and res['ins_results'].masks.shape == (0, 74, 91)
