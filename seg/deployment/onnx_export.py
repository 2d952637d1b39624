"""ONNX export of FastSAM2 / RapSAM: the image encoder, the prompt decoder and the two graphs of
the streaming video tracker.

The split is SAM's: the encoder runs once per image (or video frame), the decoder once per prompt
update on the cached embedding. The wrappers call the model's own code (``RapSAM.encode_image`` /
``RapSAM.decode_prompts``, the head's ``read_memory`` / ``decode``) on plain tensors, so the
exported graphs compute exactly what the PyTorch predictors compute; ``check_parity`` proves it
with onnxruntime.

Graphs (``H, W``: the export size of the padded, normalised input; ``h, w = H/4, W/4``):

- encoder: ``image [1, 3, H, W]`` (``model.preprocess_frame`` output) -> ``image_embed
  [1, C, h, w]``. The token pruner follows the TaskRouter's ``'interactive'`` rule, as
  ``FastSAM2ImagePredictor`` does (on in the FastSAM2 configs); its topk / scatter export at
  opset >= 17. Single images only: the pruner's cross-frame score cache (video) stays in PyTorch.
- decoder: ``image_embed``, ``point_coords [N, P, 2]`` (x / W, y / H of the padded input, 0..1),
  ``point_labels [N, P]`` int64 (1 positive, 0 negative, -1 padding), ``boxes [N, 4]`` (xyxy
  normalised the same way), ``box_valid [N]`` bool, ``mask_input [N, h, w]`` (low-res logits of a
  previous prediction, > 0 = inside), ``mask_valid [N]`` bool -> ``mask_logits [N, h, w]``,
  ``iou_scores [N]``. ``N`` (objects) and ``P`` (points per object) are dynamic axes. Every
  object needs at least one valid prompt (a point with label >= 0, a valid box or a valid mask).
  Text prompts are not an input: see ``docs/deployment.md``.
- video (``StreamingTracker.step`` as two graphs on the encoder's ``image_embed``; the memory is
  an explicit input and output, its bookkeeping stays with the caller: ``onnx_tracker``):

  - video_prompt (objects prompted on a frame): ``image_embed``, the decoder's point / box inputs,
    ``mask_prompt [N, H, W]`` (0..1 at the padded input size, e.g. a VOS first-frame mask),
    ``mask_valid [N]`` -> ``mask_logits [N, h, w]``, ``memory_masks [N, h, w]`` (what the
    memory stores: the mask prompt as logits where it was given alone, else ``mask_logits``),
    ``class_embeds [N, D]`` (L2-normalised, the memory embedding), ``queries [N, C]`` (the prompt
    query the object keeps), ``iou_scores [N]``.
  - video_step (tracked objects on a later frame): ``image_embed``, ``queries [K, C]``,
    ``memory_embeds [K, M, D]``, ``memory_valid [K, M]`` bool, ``memory_ages [K, M]`` int64
    (steps since the entry), ``prev_mask_logits [K, h, w]`` (each object's newest remembered
    mask) -> ``mask_logits [K, h, w]``, ``class_embeds [K, D]``, ``mask_scores [K]`` (the
    memory's key-frame score, ``mask_confidence``), ``iou_scores [K]``.

  - with the head's ``mask_warp`` (``LocalMaskWarp``: a tracked object's previous mask is moved
    by local correspondence of the previous frame's and this frame's keys), both graphs also
    take the preprocessed frame ``image [1, 3, H, W]`` (the encoder's input; the keys include
    its colour patches) and output this frame's ``warp_keys [Dk, h, w]``; video_step takes the
    previous step's as ``prev_warp_keys [Dk, h, w]`` and warps ``prev_mask_logits`` with them
    before decoding, as ``StreamingTracker.step`` does.

  ``N``, ``P``, ``K`` and ``M`` are dynamic. Objects never interact, so a frame with tracked and
  newly prompted objects runs both graphs and gives what one PyTorch step gives.
"""
import contextlib
import os
import os.path as osp
import time
import warnings
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import nn

from seg.models.detectors.rapsam import PromptGroup
from seg.models.detectors.streaming_tracker import mask_confidence
from seg.models.heads.prompt_mask_refiner import DensePrompts
from seg.models.utils import StreamingMemory
from seg.utils.atomic_io import atomic_write_json

PARTS = ('encoder', 'decoder', 'video')
MIN_OPSET = 17
ENCODER_INPUTS, ENCODER_OUTPUTS = ['image'], ['image_embed']
DECODER_INPUTS = ['image_embed', 'point_coords', 'point_labels', 'boxes', 'box_valid', 'mask_input',
                  'mask_valid']
DECODER_OUTPUTS = ['mask_logits', 'iou_scores']
DECODER_DYNAMIC_AXES = {'point_coords': {0: 'num_objects', 1: 'num_points'},
                        'point_labels': {0: 'num_objects', 1: 'num_points'},
                        'boxes': {0: 'num_objects'}, 'box_valid': {0: 'num_objects'},
                        'mask_input': {0: 'num_objects'}, 'mask_valid': {0: 'num_objects'},
                        'mask_logits': {0: 'num_objects'}, 'iou_scores': {0: 'num_objects'}}
VIDEO_PROMPT_INPUTS = ['image_embed', 'point_coords', 'point_labels', 'boxes', 'box_valid',
                       'mask_prompt', 'mask_valid']
VIDEO_PROMPT_OUTPUTS = ['mask_logits', 'memory_masks', 'class_embeds', 'queries', 'iou_scores']
VIDEO_PROMPT_DYNAMIC_AXES = {**{k: v for k, v in DECODER_DYNAMIC_AXES.items()
                                if k in VIDEO_PROMPT_INPUTS},
                             'mask_prompt': {0: 'num_objects'},
                             **{k: {0: 'num_objects'} for k in VIDEO_PROMPT_OUTPUTS}}
VIDEO_STEP_INPUTS = ['image_embed', 'queries', 'memory_embeds', 'memory_valid', 'memory_ages',
                     'prev_mask_logits']
VIDEO_STEP_OUTPUTS = ['mask_logits', 'class_embeds', 'mask_scores', 'iou_scores']
VIDEO_STEP_DYNAMIC_AXES = {'queries': {0: 'num_objects'},
                           'memory_embeds': {0: 'num_objects', 1: 'num_entries'},
                           'memory_valid': {0: 'num_objects', 1: 'num_entries'},
                           'memory_ages': {0: 'num_objects', 1: 'num_entries'},
                           'prev_mask_logits': {0: 'num_objects'},
                           **{k: {0: 'num_objects'} for k in VIDEO_STEP_OUTPUTS}}
# extra inputs / outputs of the video graphs of a model whose head has a mask_warp
WARP_PROMPT_INPUTS, WARP_STEP_INPUTS, WARP_OUTPUTS = ['image'], ['image', 'prev_warp_keys'], \
    ['warp_keys']
# the host loop's settings, written beside the video graphs
VIDEO_CONFIG = 'video.json'
# the logit clamp of a warped mask probability (``StreamingTracker.step``'s)
WARP_LOGIT_EPS = 1e-4


class ImageEncoderONNX(nn.Module):
    """``image [1, 3, H, W]`` -> ``image_embed [1, C, h, w]`` through ``RapSAM.encode_image``."""

    def __init__(self, model: nn.Module, mode: str = 'interactive') -> None:
        super().__init__()
        self.model, self.mode = model, mode

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(image, mode=self.mode)[:, :, 0]


class PromptDecoderONNX(nn.Module):
    """Plain prompt tensors (see the module docstring) -> ``(mask_logits [N, h, w], iou [N])``
    through ``RapSAM.decode_prompts``, at the TaskRouter's ``'interactive'`` depth.

    Args:
        model: a RapSAM with an IoU head (``panoptic_head.iou_head``), class embeddings ready.
        input_hw: the padded input size ``(H, W)`` the normalised coordinates are scaled to.
    """

    def __init__(self, model: nn.Module, input_hw: Tuple[int, int]) -> None:
        super().__init__()
        if getattr(model.panoptic_head, 'iou_head', None) is None:
            raise ValueError('PromptDecoderONNX: the model has no panoptic_head.iou_head, so there '
                             'are no IoU scores to export')
        self.model, self.input_hw = model, tuple(input_hw)

    def forward(self, image_embed: torch.Tensor, point_coords: torch.Tensor,
                point_labels: torch.Tensor, boxes: torch.Tensor, box_valid: torch.Tensor,
                mask_input: torch.Tensor, mask_valid: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        masks = (mask_input > 0).float() * mask_valid[:, None, None].float()
        prompts = _prompt_rows(self.input_hw, point_coords, point_labels, boxes, box_valid, masks)
        # every type named: the routing does not depend on them and it saves data-dependent reads
        final, _ = self.model.decode_prompts(image_embed[:, :, None], [prompts], self.input_hw,
                                             types={'point', 'box', 'mask'})
        return final.prm_mask[:, 0], final.prm_iou


class VideoPromptONNX(nn.Module):
    """Objects prompted on a video frame, as ``StreamingTracker.step`` decodes them: plain prompt
    tensors (see the module docstring) -> ``(mask_logits, memory_masks, class_embeds, queries,
    iou_scores)``, at the TaskRouter's ``'vos'`` depth. With the head's ``mask_warp`` it also
    takes the preprocessed frame ``image`` and returns the frame's ``warp_keys`` last.

    Args:
        model: a RapSAM with a streaming memory and an IoU head, class embeddings ready.
        input_hw: the padded input size ``(H, W)``.
    """

    def __init__(self, model: nn.Module, input_hw: Tuple[int, int]) -> None:
        super().__init__()
        self.model, self.input_hw = model, tuple(input_hw)
        self.num_stages = vos_num_stages(model)

    def forward(self, image_embed: torch.Tensor, point_coords: torch.Tensor,
                point_labels: torch.Tensor, boxes: torch.Tensor, box_valid: torch.Tensor,
                mask_prompt: torch.Tensor, mask_valid: torch.Tensor,
                image: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        feat = image_embed[:, :, None]
        masks = mask_prompt * mask_valid[:, None, None].to(mask_prompt.dtype)
        prompts = _prompt_rows(self.input_hw, point_coords, point_labels, boxes, box_valid, masks)
        tokens = self.model._encode_prompts([PromptGroup(0, 0, prompts)], feat, self.input_hw)
        head = self.model.panoptic_head
        queries, init_masks, valid = head.init_prompt_queries(tokens, feat)
        final = head.decode(feat, None, (queries, init_masks, valid), self.num_stages,
                            self.model.mask_refiner,
                            dense_prompts=DensePrompts.from_tokens(tokens)).final
        logits = final.prm_mask[:, 0]
        # as StreamingTracker.step: a mask prompt given alone (a reference mask) is remembered
        # as given; with clicks or a box it is the mask they correct: the prediction is
        given = tokens.mask_valid & ~tokens.point_valid.any(1) & ~tokens.box_valid
        memory_masks = torch.where(given[:, None, None], tokens.mask_logits.to(logits.dtype),
                                   logits)
        outputs = (logits, memory_masks, F.normalize(final.prm_cls_embed, dim=-1), queries[0],
                   final.prm_iou)
        if head.mask_warp is None:
            return outputs
        return outputs + (_warp_keys(head, image_embed, image), )


class VideoStepONNX(nn.Module):
    """Tracked objects on a later frame, as ``StreamingTracker.step`` decodes them: each object's
    prompt query conditioned on its memory (``head.read_memory``), its newest remembered mask as
    initial mask and propagated mask prompt, decoded at the TaskRouter's ``'vos'`` depth.

    ``(image_embed, queries, memory_embeds, memory_valid, memory_ages, prev_mask_logits)`` ->
    ``(mask_logits, class_embeds, mask_scores, iou_scores)``; every object needs at least one
    valid memory entry (its prompted frame is never evicted). With the head's ``mask_warp`` also
    ``image`` and ``prev_warp_keys`` in (the previous mask is warped onto this frame first) and
    this frame's ``warp_keys`` out, last."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.num_stages = vos_num_stages(model)

    def forward(self, image_embed: torch.Tensor, queries: torch.Tensor,
                memory_embeds: torch.Tensor, memory_valid: torch.Tensor,
                memory_ages: torch.Tensor, prev_mask_logits: torch.Tensor,
                image: Optional[torch.Tensor] = None,
                prev_warp_keys: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        head = self.model.panoptic_head
        feat = image_embed[:, :, None]
        query = head.read_memory(queries, memory_embeds, memory_valid, memory_ages)
        masks, keys = prev_mask_logits, None
        if head.mask_warp is not None:
            keys = _warp_keys(head, image_embed, image)
            # as StreamingTracker.step: the previous masks moved onto this frame
            masks = torch.logit(head.mask_warp(prev_warp_keys, keys, masks.sigmoid()),
                                eps=WARP_LOGIT_EPS)
        valid = torch.ones_like(masks[None, :, 0, 0], dtype=torch.bool)
        final = head.decode(feat, None, (query[None], masks[None, :, None], valid),
                            self.num_stages, self.model.mask_refiner,
                            dense_prompts=DensePrompts.from_masks(masks)).final
        logits = final.prm_mask[:, 0]
        outputs = (logits, F.normalize(final.prm_cls_embed, dim=-1), mask_confidence(logits),
                   final.prm_iou)
        return outputs if keys is None else outputs + (keys, )


def _warp_keys(head: nn.Module, image_embed: torch.Tensor,
               image: Optional[torch.Tensor]) -> torch.Tensor:
    """The frame's ``LocalMaskWarp`` keys ``[Dk, h, w]`` (``StreamingTracker.step``'s)."""
    if image is None:
        raise ValueError("video export: the head's mask_warp needs the frame's image input")
    return head.mask_warp.keys(image_embed, image)[0]


def video_graph_io(model: nn.Module) -> Dict[str, Tuple[List[str], List[str]]]:
    """Input and output names of the video graphs of ``model``: ``{'video_prompt': (inputs,
    outputs), 'video_step': (inputs, outputs)}``, with the warp's extras where the head has a
    ``mask_warp``."""
    if getattr(model.panoptic_head, 'mask_warp', None) is None:
        return dict(video_prompt=(VIDEO_PROMPT_INPUTS, VIDEO_PROMPT_OUTPUTS),
                    video_step=(VIDEO_STEP_INPUTS, VIDEO_STEP_OUTPUTS))
    return dict(video_prompt=(VIDEO_PROMPT_INPUTS + WARP_PROMPT_INPUTS,
                              VIDEO_PROMPT_OUTPUTS + WARP_OUTPUTS),
                video_step=(VIDEO_STEP_INPUTS + WARP_STEP_INPUTS, VIDEO_STEP_OUTPUTS + WARP_OUTPUTS))


def vos_num_stages(model: nn.Module) -> int:
    """The decoder depth ``RapSAM.track_step`` runs (the TaskRouter's ``'vos'`` rule, which must
    turn the memory on; all stages without a router). Raises for a model that cannot track."""
    if model.memory_cfg is None or getattr(model.panoptic_head, 'memory_reader', None) is None:
        raise ValueError("video export: the model has no streaming memory (memory=dict(type="
                         "'StreamingMemory', ...) and the head's memory_reader); use a FastSAM2 "
                         'config')
    if getattr(model.panoptic_head, 'iou_head', None) is None:
        raise ValueError('video export: the model has no panoptic_head.iou_head, so there are no '
                         'IoU scores to export')
    if model.task_router is None:
        return model.panoptic_head.num_stages
    decision = model.task_router.route('vos', ('mask', ), 2)
    if not decision.use_memory:
        raise ValueError("video export: the task_router's 'vos' rule must turn the memory on "
                         '(use_memory=True)')
    return decision.num_stages


def _prompt_rows(input_hw: Tuple[int, int], point_coords: torch.Tensor,
                 point_labels: torch.Tensor, boxes: torch.Tensor, box_valid: torch.Tensor,
                 masks: torch.Tensor) -> InstanceData:
    """Graph prompt inputs (coordinates normalised to the padded input) -> the model's prompt
    rows (pixels of the padded input, ``seg.structures.prompts``)."""
    h, w = input_hw
    scale = point_coords.new_tensor([w, h])
    return InstanceData(points=point_coords * scale, point_labels=point_labels,
                        bboxes=boxes * scale.repeat(2), box_valid=box_valid, masks=masks)


def _bincount_symbolic(g, x, weights, minlength):
    """``aten::bincount`` (no ONNX op) for the head's per-sample prompt counts: ``counts[i] =
    sum(x == i)`` for ``i < minlength``. Exact here because the exported decoder has one image
    (``minlength`` = 1 and every ``x`` is 0)."""
    from torch.onnx import symbolic_helper
    if not symbolic_helper._is_none(weights):
        raise RuntimeError('ONNX export: bincount with weights is not supported')
    n = symbolic_helper._maybe_get_const(minlength, 'i')
    n = g.op('Constant', value_t=torch.tensor(n, dtype=torch.long)) if isinstance(n, int) \
        else g.op('Cast', n, to_i=7)  # 7: int64
    zero = g.op('Constant', value_t=torch.tensor(0, dtype=torch.long))
    one = g.op('Constant', value_t=torch.tensor(1, dtype=torch.long))
    bins = g.op('Range', zero, n, one)
    hits = g.op('Equal', g.op('Unsqueeze', x, g.op('Constant', value_t=torch.tensor([1]))), bins)
    return g.op('ReduceSum', g.op('Cast', hits, to_i=7), g.op('Constant', value_t=torch.tensor([0])),
                keepdims_i=0)


@contextlib.contextmanager
def _traceable_attention() -> Iterator[None]:
    """During export only: attention's packed in-projection split with ``chunk``.

    PyTorch's own ``_in_projection_packed`` splits q / k / v (self-attention) and k / v (keys =
    values) with ``unflatten``, which the TorchScript ONNX exporter records with the traced
    sequence length as a constant: the prompt fusion's attention over the P point tokens, and
    the memory reader's over the M memory entries, would then reject any other length. ``chunk``
    on the last dimension gives the same tensors and keeps the length symbolic."""
    original = F._in_projection_packed

    def packed(q, k, v, w, b=None):
        if q is k and k is v:
            return tuple(t.contiguous() for t in F.linear(q, w, b).chunk(3, dim=-1))
        if k is v:
            e = q.shape[-1]
            w_q, w_kv = w.split([e, 2 * e])
            b_q, b_kv = (None, None) if b is None else b.split([e, 2 * e])
            k_proj, v_proj = F.linear(k, w_kv, b_kv).chunk(2, dim=-1)
            return F.linear(q, w_q, b_q), k_proj.contiguous(), v_proj.contiguous()
        return original(q, k, v, w, b)

    F._in_projection_packed = packed
    try:
        yield
    finally:
        F._in_projection_packed = original


def _export(module: nn.Module, args: tuple, path: str, input_names: List[str],
            output_names: List[str], dynamic_axes: Optional[Dict[str, Dict[int, str]]],
            opset: int) -> None:
    torch.onnx.register_custom_op_symbolic('aten::bincount', _bincount_symbolic, opset)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    # not under no_grad: there nn.TransformerEncoderLayer takes its fused fast path
    # (aten::_transformer_encoder_layer_fwd), which has no ONNX symbolic
    with _traceable_attention():
        # dynamo=False: the TorchScript exporter traces through the model's Python (InstanceData,
        # data-dependent checks) where torch.export would need every check rewritten
        torch.onnx.export(module, args, path, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False,
                          do_constant_folding=True)


def example_decoder_inputs(embed: torch.Tensor, num_objects: int, num_points: int,
                           seed: int = 0) -> Tuple[torch.Tensor, ...]:
    """Random decoder inputs on ``embed [1, C, h, w]``: every object has a positive first click
    (so each has a valid prompt), random further clicks (some padding), and a random half of the
    objects a box and a mask prompt each."""
    gen = torch.Generator().manual_seed(seed)
    n, p, (h, w) = num_objects, num_points, embed.shape[-2:]
    coords = torch.rand(n, p, 2, generator=gen)
    labels = torch.randint(-1, 2, (n, p), generator=gen)
    labels[:, 0] = 1
    corners = torch.rand(n, 2, 2, generator=gen).sort(dim=1).values  # (x1, y1) <= (x2, y2)
    boxes = corners.reshape(n, 4)
    box_valid = torch.rand(n, generator=gen) > 0.5
    mask_input = torch.randn(n, h, w, generator=gen) * 4
    mask_valid = torch.rand(n, generator=gen) > 0.5
    return coords, labels, boxes, box_valid, mask_input, mask_valid


def example_video_prompt_inputs(embed: torch.Tensor, image_hw: Tuple[int, int],
                                num_objects: int, num_points: int, seed: int = 0
                                ) -> Tuple[torch.Tensor, ...]:
    """Random video_prompt inputs: ``example_decoder_inputs``, the mask prompt a soft (0..1) mask
    at the padded input size ``image_hw``."""
    coords, labels, boxes, box_valid, mask_input, mask_valid = example_decoder_inputs(
        embed, num_objects, num_points, seed)
    mask_prompt = F.interpolate(mask_input.sigmoid()[:, None], size=tuple(image_hw),
                                mode='bilinear', align_corners=False)[:, 0]
    return coords, labels, boxes, box_valid, mask_prompt, mask_valid


def example_video_step_inputs(model: nn.Module, embed: torch.Tensor, num_objects: int,
                              num_entries: int, seed: int = 0) -> Tuple[torch.Tensor, ...]:
    """Random video_step inputs on ``embed [1, C, h, w]``: queries, unit-norm memory embeddings
    (some entries padding, the first of each object valid), ages 0..29 and previous logits."""
    gen = torch.Generator().manual_seed(seed)
    k, m, (c, h, w) = num_objects, num_entries, embed.shape[1:]
    d = model.panoptic_head.memory_reader.memory_dim
    queries = torch.randn(k, c, generator=gen)
    memory = F.normalize(torch.randn(k, m, d, generator=gen), dim=-1)
    valid = torch.rand(k, m, generator=gen) > 0.3
    valid[:, 0] = True
    ages = torch.randint(0, 30, (k, m), generator=gen)
    prev = torch.randn(k, h, w, generator=gen) * 4
    return queries, memory, valid, ages, prev


def example_warp_inputs(model: nn.Module, graph: str, embed: torch.Tensor, image: torch.Tensor,
                        shift: int = 1) -> Tuple[torch.Tensor, ...]:
    """The warp's extra inputs of ``graph`` (``'video_prompt'``: ``(image, )``; ``'video_step'``:
    ``(image, prev_warp_keys)``; none without a ``mask_warp``) for the frame ``image [1, 3, H, W]``
    with embedding ``embed``: the previous keys are those of the frame and its embedding rolled
    ``shift`` mask cells left (the objects moved right), so the warp has motion to follow."""
    warp = getattr(model.panoptic_head, 'mask_warp', None)
    if warp is None:
        return ()
    if graph == 'video_prompt':
        return (image, )
    cell = image.shape[-1] // embed.shape[-1]
    with torch.no_grad():
        prev_keys = warp.keys(embed.roll(-shift, -1), image.roll(-shift * cell, -1))[0]
    return image, prev_keys


def export_encoder(model: nn.Module, path: str, image_hw: Tuple[int, int],
                   opset: int = MIN_OPSET) -> ImageEncoderONNX:
    """Export the image encoder at the padded input size ``image_hw``; returns the wrapper."""
    wrapper = ImageEncoderONNX(model).eval()
    _export(wrapper, (torch.randn(1, 3, *image_hw), ), path, ENCODER_INPUTS, ENCODER_OUTPUTS, None,
            opset)
    return wrapper


def export_decoder(model: nn.Module, path: str, image_hw: Tuple[int, int],
                   opset: int = MIN_OPSET) -> PromptDecoderONNX:
    """Export the prompt decoder (dynamic objects / points) for embeddings of an input of
    ``image_hw``; returns the wrapper."""
    wrapper = PromptDecoderONNX(model, image_hw).eval()
    with torch.no_grad():
        embed = ImageEncoderONNX(model)(torch.randn(1, 3, *image_hw))
    # traced with every prompt kind present, so no prompt-kind branch is left out of the graph
    args = (embed, ) + example_decoder_inputs(embed, 2, 3)
    args[4][:] = True
    args[6][:] = True
    _export(wrapper, args, path, DECODER_INPUTS, DECODER_OUTPUTS, DECODER_DYNAMIC_AXES, opset)
    return wrapper


def export_video_prompt(model: nn.Module, path: str, image_hw: Tuple[int, int],
                        opset: int = MIN_OPSET) -> VideoPromptONNX:
    """Export the prompted-frame graph of the video tracker (dynamic objects / points)."""
    wrapper = VideoPromptONNX(model, image_hw).eval()
    image = torch.randn(1, 3, *image_hw)
    with torch.no_grad():
        embed = ImageEncoderONNX(model)(image)
    # every prompt kind present, as for the decoder
    args = ((embed, ) + example_video_prompt_inputs(embed, image_hw, 2, 3)
            + example_warp_inputs(model, 'video_prompt', embed, image))
    args[4][:] = True
    args[6][:] = True
    _export(wrapper, args, path, *video_graph_io(model)['video_prompt'], VIDEO_PROMPT_DYNAMIC_AXES,
            opset)
    return wrapper


def export_video_step(model: nn.Module, path: str, image_hw: Tuple[int, int],
                      opset: int = MIN_OPSET) -> VideoStepONNX:
    """Export the tracked-frame graph of the video tracker (dynamic objects / memory entries)."""
    wrapper = VideoStepONNX(model).eval()
    image = torch.randn(1, 3, *image_hw)
    with torch.no_grad():
        embed = ImageEncoderONNX(model)(image)
    args = ((embed, ) + example_video_step_inputs(model, embed, 2, 3)
            + example_warp_inputs(model, 'video_step', embed, image))
    _export(wrapper, args, path, *video_graph_io(model)['video_step'], VIDEO_STEP_DYNAMIC_AXES,
            opset)
    return wrapper


def video_config(model: nn.Module, image_hw: Tuple[int, int]) -> dict:
    """What the host loop needs beside the video graphs: the padded input size and the
    ``StreamingMemory`` settings of the model (its key-frame, capacity and eviction rules)."""
    memory = dict(model.memory_cfg)
    kind = memory.pop('type')
    if kind not in (StreamingMemory, 'StreamingMemory'):
        raise ValueError(f'video export: the host loop keeps a StreamingMemory, the model has '
                         f'memory type {kind!r}')
    return dict(input_hw=list(image_hw), memory=memory)


def max_abs_diff(module: nn.Module, onnx_path: str, inputs: Sequence[torch.Tensor],
                 input_names: Sequence[str]) -> float:
    """Largest absolute difference between ``module(*inputs)`` and the ONNX graph run by
    onnxruntime (CPU) on the same inputs, over all outputs."""
    import onnxruntime as ort
    session = ort.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    with torch.no_grad():
        ref = module(*inputs)
    ref = ref if isinstance(ref, tuple) else (ref, )
    feed = {name: x.numpy() for name, x in zip(input_names, inputs)}
    got = session.run(None, feed)
    if len(got) != len(ref):
        raise RuntimeError(f'{onnx_path}: {len(got)} outputs, PyTorch gives {len(ref)}')
    diffs = []
    for name, g, r in zip(session.get_outputs(), got, ref):
        if tuple(g.shape) != tuple(r.shape):
            raise RuntimeError(f'{onnx_path}: output {name.name} has shape {tuple(g.shape)}, '
                               f'PyTorch {tuple(r.shape)}')
        diffs.append(float(np.abs(g - r.numpy()).max()) if g.size else 0.0)
    return max(diffs)


def check_parity(model: nn.Module, out_dir: str, image_hw: Tuple[int, int],
                 parts: Sequence[str], cases: Sequence[Tuple[int, int]] = ((1, 1), (3, 2)),
                 video_cases: Sequence[Tuple[int, int]] = ((1, 1), (3, 6)),
                 seed: int = 0) -> Dict[str, float]:
    """Max abs difference ONNX vs PyTorch for each exported part on random inputs: the encoder
    on a random image, the decoder and video_prompt on its embedding for each ``(objects,
    points)`` case, video_step for each ``(objects, memory entries)`` of ``video_cases`` (other
    sizes than traced: the dynamic axes at work). Keys ``'encoder'``, ``'decoder_N{n}_P{p}'``,
    ``'video_prompt_N{n}_P{p}'``, ``'video_step_K{k}_M{m}'``."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(1, 3, *image_hw, generator=gen)
    encoder = ImageEncoderONNX(model).eval()
    with torch.no_grad():
        embed = encoder(image)
    result = {}
    if 'encoder' in parts:
        result['encoder'] = max_abs_diff(encoder, osp.join(out_dir, 'encoder.onnx'), (image, ),
                                         ENCODER_INPUTS)
    if 'decoder' in parts:
        decoder = PromptDecoderONNX(model, image_hw).eval()
        for k, (n, p) in enumerate(cases):
            inputs = (embed, ) + example_decoder_inputs(embed, n, p, seed=seed + k + 1)
            result[f'decoder_N{n}_P{p}'] = max_abs_diff(decoder, osp.join(out_dir, 'decoder.onnx'),
                                                        inputs, DECODER_INPUTS)
    if 'video' in parts:
        io = video_graph_io(model)
        prompt = VideoPromptONNX(model, image_hw).eval()
        for k, (n, p) in enumerate(cases):
            inputs = ((embed, ) + example_video_prompt_inputs(embed, image_hw, n, p, seed + k + 1)
                      + example_warp_inputs(model, 'video_prompt', embed, image))
            result[f'video_prompt_N{n}_P{p}'] = max_abs_diff(
                prompt, osp.join(out_dir, 'video_prompt.onnx'), inputs, io['video_prompt'][0])
        step = VideoStepONNX(model).eval()
        for k, (n, m) in enumerate(video_cases):
            inputs = ((embed, ) + example_video_step_inputs(model, embed, n, m, seed + k + 1)
                      + example_warp_inputs(model, 'video_step', embed, image))
            result[f'video_step_K{n}_M{m}'] = max_abs_diff(
                step, osp.join(out_dir, 'video_step.onnx'), inputs, io['video_step'][0])
    return result


def check_parts(parts: Sequence[str]) -> None:
    """Raise ValueError for unknown parts (or none)."""
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise ValueError(f'export_onnx: unknown part(s) {unknown or parts}; choose from '
                         f'{list(PARTS)}')


def export_onnx(model: nn.Module, out_dir: str, image_hw: Tuple[int, int],
                parts: Sequence[str] = PARTS, opset: int = MIN_OPSET,
                verbose: bool = True) -> Dict[str, str]:
    """Export ``parts`` of an eval-mode RapSAM to ``out_dir``: ``'encoder'`` -> encoder.onnx,
    ``'decoder'`` -> decoder.onnx, ``'video'`` -> video_prompt.onnx, video_step.onnx and
    ``VIDEO_CONFIG`` (the host loop's settings).

    ``image_hw``: the padded input size (multiples of 32). Returns graph name (``'encoder'``,
    ``'decoder'``, ``'video_prompt'``, ``'video_step'``, ``'video_config'``) -> file."""
    check_parts(parts)
    if opset < MIN_OPSET:
        raise ValueError(f'export_onnx: opset {opset} < {MIN_OPSET} (the token pruner\'s topk / '
                         'scatter and LayerNormalization need it)')
    if len(image_hw) != 2 or any(s <= 0 or s % 32 for s in image_hw):
        raise ValueError(f'export_onnx: image size must be (H, W) multiples of 32 (the backbone\'s '
                         f'stride), got {tuple(image_hw)}')
    model.eval()
    if 'video' in parts:
        vos_num_stages(model)  # a model that cannot track fails before any export
        _warn_if_video_encoder_differs(model)
    model._ensure_class_embeds()  # outside the graph: a buffer of the exported decoder
    graphs = (('encoder', 'encoder', export_encoder), ('decoder', 'decoder', export_decoder),
              ('video', 'video_prompt', export_video_prompt),
              ('video', 'video_step', export_video_step))
    files = {}
    for part, name, export in graphs:
        if part in parts:
            files[name] = osp.join(out_dir, f'{name}.onnx')
            start = time.perf_counter()
            export(model, files[name], image_hw, opset)
            if verbose:
                print(f'exported {name}: {files[name]} ({time.perf_counter() - start:.1f} s)')
    if 'video' in parts:
        files['video_config'] = osp.join(out_dir, VIDEO_CONFIG)
        atomic_write_json(video_config(model, image_hw), files['video_config'])
    return files


def _warn_if_video_encoder_differs(model: nn.Module) -> None:
    """encoder.onnx prunes tokens as the TaskRouter's 'interactive' rule says; the tracker as its
    'vos' rule says. Where they differ the host loop's features are not the tracker's."""
    rules = None if model.task_router is None else model.task_router.rules
    if rules is not None and rules['vos']['use_pruner'] != rules['interactive']['use_pruner']:
        warnings.warn(f"video export: the TaskRouter's 'vos' rule has use_pruner="
                      f"{rules['vos']['use_pruner']} but encoder.onnx follows 'interactive' "
                      f"(use_pruner={rules['interactive']['use_pruner']}): video features from "
                      'encoder.onnx differ from the PyTorch tracker\'s')
