"""SAM2-compatible automatic mask generation from the object queries (the panoptic path)."""
from typing import Any, Dict, List, Union

import numpy as np
import torch
from sam2.utils.amg import calculate_stability_score, remove_small_regions
from torchvision.ops import batched_nms, masks_to_boxes

from seg.models.detectors.rapsam import _to_output_res
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
        ``crop_box`` (the whole image, XYWH), sorted by ``predicted_iou``."""
        model = self.predictor.model
        inputs, sample = self.predictor.preprocess(image)
        step = model.decode_objects(model.encode_image(inputs, mode='panoptic'))
        scores = step.obj_cls[0].softmax(-1)[:, :-1].max(-1).values
        keep = scores >= self.pred_iou_thresh
        scores, low = scores[keep], step.obj_mask[0, keep, 0]
        if not len(scores):
            return []
        logits = _to_output_res(low, sample, tuple(inputs.shape[-2:]), rescale=True)
        stability = calculate_stability_score(logits, self.mask_threshold,
                                              self.stability_score_offset)
        keep = stability >= self.stability_score_thresh
        masks = logits[keep] > self.mask_threshold
        scores, stability = scores[keep], stability[keep]
        nonempty = masks.flatten(1).any(1)
        masks, scores, stability = masks[nonempty], scores[nonempty], stability[nonempty]
        masks, scores, stability = self._nms(masks, scores, stability)
        if self.min_mask_region_area > 0 and len(masks):
            masks, scores, stability = self._clean(masks, scores, stability)
        return self._records(masks, scores, stability)

    def _nms(self, masks: torch.Tensor, scores: torch.Tensor, stability: torch.Tensor) -> tuple:
        if not len(masks):
            return masks, scores, stability
        boxes = masks_to_boxes(masks).float()
        keep = batched_nms(boxes, scores, torch.zeros_like(scores, dtype=torch.long),
                           self.box_nms_thresh)
        return masks[keep], scores[keep], stability[keep]

    def _clean(self, masks: torch.Tensor, scores: torch.Tensor, stability: torch.Tensor) -> tuple:
        """SAM2's post-processing: drop small islands and fill small holes, re-run NMS."""
        cleaned = []
        for m in masks.cpu().numpy():
            m, _ = remove_small_regions(m, self.min_mask_region_area, mode='holes')
            m, _ = remove_small_regions(m, self.min_mask_region_area, mode='islands')
            cleaned.append(torch.from_numpy(m))
        masks = torch.stack(cleaned).to(scores.device)
        nonempty = masks.flatten(1).any(1)
        return self._nms(masks[nonempty], scores[nonempty], stability[nonempty])

    def _records(self, masks: torch.Tensor, scores: torch.Tensor, stability: torch.Tensor
                 ) -> List[Dict[str, Any]]:
        if not len(masks):
            return []
        h, w = masks.shape[-2:]
        boxes = masks_to_boxes(masks).cpu().numpy()
        areas = masks.flatten(1).sum(1).cpu().tolist()
        order = scores.argsort(descending=True).cpu().tolist()
        masks_np = masks.cpu().numpy()
        records = []
        for i in order:
            x1, y1, x2, y2 = boxes[i].tolist()
            ys, xs = np.nonzero(masks_np[i])
            mid = len(ys) // 2  # a pixel of the mask (row-major median), as a representative point
            if self.output_mode == 'coco_rle':
                segmentation = mask_to_rle(masks_np[i])
            else:
                segmentation = masks_np[i]
            records.append(dict(segmentation=segmentation, area=int(areas[i]),
                                bbox=[x1, y1, x2 - x1, y2 - y1],  # SAM2's XYWH of the box
                                predicted_iou=float(scores[i]),
                                point_coords=[[float(xs[mid]), float(ys[mid])]],
                                stability_score=float(stability[i]), crop_box=[0, 0, w, h]))
        return records
