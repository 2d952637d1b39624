"""Tiny cases for the decoder-head modules."""
import torch

from seg.structures import build_prompts

from . import TinyCase

C, TEXT = 16, 8


def _feats(b: int = 2, t: int = 1) -> torch.Tensor:
    return torch.randn(b, C, t, 8, 8)


def _prompts():
    p = build_prompts(points=[[[3, 4], [20, 9]], [[12, 12]]], point_labels=[[1, 0], [1]],
                      bboxes=[[0, 0, 16, 16], [4, 4, 30, 28]], texts=['dog', ''], gt_ids=[0, 1])
    p.masks = torch.zeros(2, 32, 32)
    p.masks[0, 2:12, 2:14] = 1
    return p


def _run_head(head, t: int = 1, prompt_exits=()):
    head.set_class_embeddings(torch.randn(head.num_classes, TEXT))
    feats = _feats(t=t)
    tokens = head.prompt_encoder([_prompts(), None], [0, 0], feats, (32, 32), [torch.randn(2, TEXT), None])
    out = head(feats, tokens, prompt_exits=prompt_exits)
    steps = out.steps + [out.exits[d] for d in sorted(out.exits)]
    return [(s.obj_cls, s.obj_mask, s.prm_cls, s.prm_mask, s.prm_iou) for s in steps]


def _run_multimask_head(head):
    head.set_class_embeddings(torch.randn(head.num_classes, TEXT))
    feats = _feats(t=2)
    tokens = head.prompt_encoder([_prompts(), None], [0, 1], feats, (32, 32), [None, None])
    out = head(feats, tokens, prompt_exits=(1, ), multimask=True)
    return [(s.obj_cls, s.obj_mask, s.prm_cls, s.prm_mask, s.prm_iou, s.prm_multi_mask,
             s.prm_multi_iou) for s in out.steps + [out.exits[1]]]


def _run_fusion(head):
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=dict(img_shape=(28, 30), ori_shape=(56, 60)))
    res = head.predict_grid(torch.randn(6, 6), torch.randn(6, 8, 8), sample, (32, 32), True)
    ins = res['ins_results']
    return res['pan_results'].sem_seg.float(), ins.scores, ins.bboxes


def _run_stage(stage):
    q = torch.randn(2, 5, C)
    valid = torch.tensor([[True] * 5, [True, True, False, False, False]])
    return stage(q, _feats(), torch.randn(2, 5, 1, 8, 8), valid)


def _run_encoder(enc):
    tok = enc([_prompts(), None], [0, 0], _feats(), (32, 32), [torch.randn(2, TEXT), None])
    return tok.point_embed, tok.box_embed, tok.mask_embed


def _run_pooling(pool):
    n, p = 3, 4
    return pool(torch.randn(n, p, C), torch.rand(n, p) > 0.3, torch.randn(n, 2, C),
                torch.ones(n, dtype=torch.bool),
                torch.randn(n, C), torch.tensor([True, False, True]), torch.randn(n, TEXT),
                torch.tensor([True, True, False]))


def _run_memory_reader(reader):
    valid = torch.tensor([[True, True, True], [True, False, False]])
    return reader(torch.randn(2, C), torch.randn(2, 3, TEXT), valid, torch.tensor([[9, 2, 1], [1, 0, 0]]))


def _run_prompt_refiner(refiner):
    coords = torch.rand(3, 2, 2)
    labels = torch.tensor([[1, 0], [1, -1], [-1, -1]])
    return refiner(torch.randn(3, C, 8, 8), torch.randn(3, 8, 8), torch.randn(3, 8, 8),
                   torch.tensor([True, False, True]), coords, labels,
                   propagated=torch.tensor([False, False, True]))


PROPAGATION = 'pulls tracked objects to their propagated masks: streamed clips only'
HEAD = dict(type='RapSAMVideoHead', num_things_classes=3, num_stuff_classes=2, num_queries=6,
            num_stages=2, feat_channels=C, num_heads=2, ffn_channels=32, text_dim=TEXT,
            train_cfg=dict(num_points=64))

CASES = {
    'SelectiveFusionHead': TinyCase(
        dict(type='SelectiveFusionHead', num_things_classes=3, num_stuff_classes=2,
             test_cfg=dict(panoptic_on=True, instance_on=True, object_mask_thr=0.0,
                           max_per_image=10)), _run_fusion),
    'RapSAMVideoHead': TinyCase(HEAD, _run_head),
    'RapSAMVideoHead[clip]': TinyCase(HEAD, lambda m: _run_head(m, t=3)),
    'RapSAMVideoHead[exits]': TinyCase(HEAD, lambda m: _run_head(m, prompt_exits=(1, ))),
    'RapSAMVideoHead[prompt_refiner]': TinyCase(
        dict(HEAD, prompt_refiner=dict(type='PromptMaskRefiner', hidden_channels=4)),
        lambda m: _run_head(m, t=2, prompt_exits=(1, )),
        no_grad_ok={'prompt_refiner.propagation_gain': PROPAGATION}),
    'RapSAMVideoHead[multimask]': TinyCase(
        dict(HEAD, multimask_decoder=dict(type='MultimaskDecoder')), _run_multimask_head),
    'MultimaskDecoder': TinyCase(dict(type='MultimaskDecoder', feat_channels=C),
                                 lambda m: m(torch.randn(3, C), torch.randn(3, C, 8, 8))),
    'PromptMaskRefiner': TinyCase(dict(type='PromptMaskRefiner', feat_channels=C, hidden_channels=4),
                                  _run_prompt_refiner),
    'QueryIoUHead': TinyCase(dict(type='QueryIoUHead', in_channels=C, hidden_channels=8),
                             lambda m: m(torch.randn(5, C))),
    'DynamicQueryStage': TinyCase(dict(type='DynamicQueryStage', feat_channels=C, num_heads=2,
                                       ffn_channels=32, cls_channels=TEXT), _run_stage),
    'QueryAdaptor': TinyCase(dict(type='QueryAdaptor', feat_channels=C, num_heads=2, ffn_channels=32,
                                  cls_channels=TEXT), _run_stage),
    'SAMPromptEncoder': TinyCase(dict(type='SAMPromptEncoder', embed_dim=C, text_dim=TEXT), _run_encoder),
    'PromptPooling': TinyCase(dict(type='PromptPooling', embed_dim=C, text_dim=TEXT), _run_pooling),
    'MemoryCrossAttention': TinyCase(
        dict(type='MemoryCrossAttention', embed_dim=C, memory_dim=TEXT, num_heads=2), _run_memory_reader),
}
