"""ONNX export of FastSAM2 / RapSAM: the image encoder and the prompt decoder as two graphs.

The split is SAM's: the encoder runs once per image, the decoder once per prompt update on the
cached embedding. Both wrappers call the model's own code (``RapSAM.encode_image`` /
``RapSAM.decode_prompts``) on plain tensors, so the exported graphs compute exactly what the
PyTorch predictor computes; ``check_parity`` proves it with onnxruntime.

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
"""
import contextlib
import os
import os.path as osp
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import nn

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
# the per-frame video step is not exported: see ``export_onnx``
VIDEO_UNSUPPORTED = (
    "the per-frame video step ('video') is not exported: StreamingTracker.step keeps the memory as "
    'Python state whose writes are data-dependent host decisions (object ids, key-frame selection '
    'by score and frame spacing, capacity eviction, the text drift guard), so one static graph '
    'cannot express the update; run the encoder graph per frame and the tracker in PyTorch')


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
        h, w = self.input_hw
        scale = point_coords.new_tensor([w, h])
        masks = (mask_input > 0).float() * mask_valid[:, None, None].float()
        prompts = InstanceData(points=point_coords * scale, point_labels=point_labels,
                               bboxes=boxes * scale.repeat(2), box_valid=box_valid, masks=masks)
        # every type named: the routing does not depend on them and it saves data-dependent reads
        final, _ = self.model.decode_prompts(image_embed[:, :, None], [prompts], self.input_hw,
                                             types={'point', 'box', 'mask'})
        return final.prm_mask[:, 0], final.prm_iou


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
    """During export only: self-attention's packed in-projection split with ``chunk``.

    PyTorch's own ``_in_projection_packed`` splits q / k / v with ``unflatten``, which the
    TorchScript ONNX exporter records with the traced sequence length as a constant: the prompt
    fusion's attention over the P point tokens would then reject any other P. ``chunk`` on the
    last dimension gives the same tensors and keeps the length symbolic."""
    original = F._in_projection_packed

    def packed(q, k, v, w, b=None):
        if q is k and k is v:
            return tuple(t.contiguous() for t in F.linear(q, w, b).chunk(3, dim=-1))
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
                 seed: int = 0) -> Dict[str, float]:
    """Max abs difference ONNX vs PyTorch for each exported part on random inputs: the encoder
    on a random image, the decoder on its embedding for each ``(objects, points)`` case (other
    sizes than traced: the dynamic axes at work). Keys ``'encoder'``, ``'decoder_N{n}_P{p}'``."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(1, 3, *image_hw, generator=gen)
    encoder = ImageEncoderONNX(model).eval()
    result = {}
    if 'encoder' in parts:
        result['encoder'] = max_abs_diff(encoder, osp.join(out_dir, 'encoder.onnx'), (image, ),
                                         ENCODER_INPUTS)
    if 'decoder' in parts:
        with torch.no_grad():
            embed = encoder(image)
        decoder = PromptDecoderONNX(model, image_hw).eval()
        for k, (n, p) in enumerate(cases):
            inputs = (embed, ) + example_decoder_inputs(embed, n, p, seed=seed + k + 1)
            result[f'decoder_N{n}_P{p}'] = max_abs_diff(decoder, osp.join(out_dir, 'decoder.onnx'),
                                                        inputs, DECODER_INPUTS)
    return result


def check_parts(parts: Sequence[str]) -> None:
    """Raise for parts that are unknown (ValueError) or not exportable (NotImplementedError)."""
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise ValueError(f'export_onnx: unknown part(s) {unknown or parts}; choose from '
                         f'{list(PARTS)}')
    if 'video' in parts:
        raise NotImplementedError(VIDEO_UNSUPPORTED)


def export_onnx(model: nn.Module, out_dir: str, image_hw: Tuple[int, int],
                parts: Sequence[str] = ('encoder', 'decoder'), opset: int = MIN_OPSET,
                verbose: bool = True) -> Dict[str, str]:
    """Export ``parts`` of an eval-mode RapSAM to ``out_dir/{encoder,decoder}.onnx``.

    ``image_hw``: the padded input size (multiples of 32). Returns part -> file. ``'video'``
    raises (see ``VIDEO_UNSUPPORTED``)."""
    check_parts(parts)
    if opset < MIN_OPSET:
        raise ValueError(f'export_onnx: opset {opset} < {MIN_OPSET} (the token pruner\'s topk / '
                         'scatter and LayerNormalization need it)')
    if len(image_hw) != 2 or any(s <= 0 or s % 32 for s in image_hw):
        raise ValueError(f'export_onnx: image size must be (H, W) multiples of 32 (the backbone\'s '
                         f'stride), got {tuple(image_hw)}')
    model.eval()
    model._ensure_class_embeds()  # outside the graph: a buffer of the exported decoder
    files = {}
    for part, export in (('encoder', export_encoder), ('decoder', export_decoder)):
        if part in parts:
            files[part] = osp.join(out_dir, f'{part}.onnx')
            start = time.perf_counter()
            export(model, files[part], image_hw, opset)
            if verbose:
                print(f'exported {part}: {files[part]} ({time.perf_counter() - start:.1f} s)')
    return files
