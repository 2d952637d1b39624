"""SAM2-compatible automatic mask generation from the object queries (the panoptic path)."""
from typing import Any, Dict, List, Tuple, Union

import numpy as np
import pycocotools.mask as mask_utils
import torch
from sam2.utils.amg import calculate_stability_score, remove_small_regions
from torchvision.ops import batched_nms, masks_to_boxes

from seg.models.utils.mask_geometry import UPSAMPLE_CHUNK_ELEMENTS, to_output_res
from seg.utils.rle import mask_to_rle

from .image_predictor import FastSAM2ImagePredictor, ImageInput

OUTPUT_MODES = ('binary_mask', 'coco_rle')


class FastSAM2AutomaticMaskGenerator:
    """``SAM2AutomaticMaskGenerator``'s output for a RapSAM / FastSAM2 model, without a point grid:
    one decode of the learned object queries (``RapSAM.decode_objects``, the panoptic path at the
    TaskRouter's panoptic depth) proposes every mask at once.

    Each object query gives a mask and a score; ``predicted_iou`` is its confidence, the top class
    probability (the panoptic path's score; the IoU head is trained on prompt queries only). Masks
    are kept when ``predicted_iou >= pred_iou_thresh`` and their stability score (IoU of the mask
    thresholded at ``mask_threshold +- stability_score_offset``, at the original resolution, as
    SAM2) ``>= stability_score_thresh``, then de-duplicated by box NMS (``box_nms_thresh``, class
    agnostic) and optionally cleaned of small islands and holes (``min_mask_region_area`` pixels,
    followed by a second NMS, as SAM2).

    Args:
        model: a built ``RapSAM`` or a ``FastSAM2ImagePredictor`` (its model and preprocessing).
        output_mode: ``'binary_mask'`` (bool ``[H, W]`` arrays) or ``'coco_rle'`` (pycocotools
            RLE dicts with a str ``counts``).
    """

    def __init__(self, model: Union[torch.nn.Module, FastSAM2ImagePredictor],
                 pred_iou_thresh: float = 0.5, stability_score_thresh: float = 0.9,
                 stability_score_offset: float = 1.0, box_nms_thresh: float = 0.7,
                 min_mask_region_area: int = 0, output_mode: str = 'binary_mask',
                 mask_threshold: float = 0.0) -> None:
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f'output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}')
        for name, value in (('pred_iou_thresh', pred_iou_thresh),
                            ('stability_score_thresh', stability_score_thresh),
                            ('box_nms_thresh', box_nms_thresh)):
            if not 0 <= value <= 1:
                raise ValueError(f'{name} must be in [0, 1], got {value}')
        if min_mask_region_area < 0:
            raise ValueError(f'min_mask_region_area must be >= 0, got {min_mask_region_area}')
        self.predictor = (model if isinstance(model, FastSAM2ImagePredictor)
                          else FastSAM2ImagePredictor(model, mask_threshold))
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.box_nms_thresh = box_nms_thresh
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode
        self.mask_threshold = mask_threshold

    @torch.no_grad()
    def generate(self, image: ImageInput) -> List[Dict[str, Any]]:
        """Masks of one RGB image (``np.ndarray`` uint8 ``[H, W, 3]`` or PIL), SAM2's records:
        ``segmentation``, ``area``, ``bbox`` (XYWH), ``predicted_iou``, ``point_coords`` (a point
        inside the mask, ``[[x, y]]``; no prompt point exists), ``stability_score``,
        ``crop_box`` (the whole image, XYWH), sorted by ``predicted_iou``.

        Memory: candidates are upsampled to the original size a chunk at a time
        (``UPSAMPLE_CHUNK_ELEMENTS``; the stability score needs their float logits) and kept as
        COCO RLE until the end, so an 8000 x 6000 image never holds the full-size masks of every
        query; ``'binary_mask'`` output decodes only the masks returned."""
        model = self.predictor.model
        inputs, sample = self.predictor.preprocess(image)
        step = model.decode_objects(model.encode_image(inputs, mode='panoptic'))
        scores = step.obj_cls[0].softmax(-1)[:, :-1].max(-1).values
        keep = scores >= self.pred_iou_thresh
        scores, low = scores[keep], step.obj_mask[0, keep, 0]
        h, w = sample.ori_shape[:2]
        chunk = max(1, UPSAMPLE_CHUNK_ELEMENTS // (h * w))
        cands: List[Tuple[Dict[str, Any], List[float], float, float]] = []
        for k in range(0, len(low), chunk):
            logits = to_output_res(low[k:k + chunk], sample, tuple(inputs.shape[-2:]), rescale=True)
            stability = calculate_stability_score(logits, self.mask_threshold,
                                                  self.stability_score_offset)
            for j in range(len(logits)):
                mask = logits[j] > self.mask_threshold
                if stability[j] >= self.stability_score_thresh and mask.any():
                    cands.append(_candidate(mask, float(scores[k + j]), float(stability[j])))
        cands = self._nms(cands)
        if self.min_mask_region_area > 0 and cands:
            cands = self._clean(cands)
        return self._records(cands, (h, w))

    def _nms(self, cands: List[tuple]) -> List[tuple]:
        if not cands:
            return cands
        boxes = torch.tensor([c[1] for c in cands], dtype=torch.float32)
        scores = torch.tensor([c[2] for c in cands])
        keep = batched_nms(boxes, scores, torch.zeros(len(cands), dtype=torch.long),
                           self.box_nms_thresh)
        return [cands[i] for i in keep.tolist()]

    def _clean(self, cands: List[tuple]) -> List[tuple]:
        """SAM2's post-processing: drop small islands and fill small holes, re-run NMS."""
        cleaned = []
        for rle, _, score, stability in cands:
            m = mask_utils.decode(rle).astype(bool)
            m, _ = remove_small_regions(m, self.min_mask_region_area, mode='holes')
            m, _ = remove_small_regions(m, self.min_mask_region_area, mode='islands')
            if m.any():
                cleaned.append(_candidate(torch.from_numpy(m), score, stability))
        return self._nms(cleaned)

    def _records(self, cands: List[tuple], hw: Tuple[int, int]) -> List[Dict[str, Any]]:
        records = []
        for rle, (x1, y1, x2, y2), score, stability in sorted(cands, key=lambda c: -c[2]):
            mask = mask_utils.decode(rle).astype(bool)
            ys, xs = np.nonzero(mask)
            mid = len(ys) // 2  # a pixel of the mask (row-major median), as a representative point
            records.append(dict(segmentation=rle if self.output_mode == 'coco_rle' else mask,
                                area=int(mask_utils.area(rle)),
                                bbox=[x1, y1, x2 - x1, y2 - y1],  # SAM2's XYWH of the box
                                predicted_iou=score,
                                point_coords=[[float(xs[mid]), float(ys[mid])]],
                                stability_score=stability, crop_box=[0, 0, hw[1], hw[0]]))
        return records


def _candidate(mask: torch.Tensor, score: float, stability: float) -> tuple:
    """A kept mask as (COCO RLE with str counts, xyxy box as ``masks_to_boxes``, score,
    stability): compact whatever the image size."""
    box = masks_to_boxes(mask[None])[0].tolist()
    return mask_to_rle(mask.cpu().numpy()), box, score, stability
