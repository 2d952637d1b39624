"""Registered interactive-segmentation metric: NoC@thr, NoF@thr, mIoU@k and box-prompt mIoU."""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from seg.registry import METRICS
from seg.utils.masks import mask_to_box

from ..interactive import InteractivePredictor, evaluate_object, summarize_objects
from .sample_fields import get_field, to_numpy


@METRICS.register_module()
class InteractiveSegMetric(BaseMetric):
    """Drives an interactive predictor over every GT object with the RITM click protocol.

    Every row of ``data_sample.gt_instances.masks`` is one object (in the packed-image frame, the
    same frame as ``data_batch['inputs']``). Pixels where an optional ``data_sample.ignore_mask``
    (``PixelData``, bool [1, H, W]) is True are ignored. The model's own test output is not used:
    the metric calls ``predictor(image, clicks, prev_logits) -> logits`` (see
    :class:`seg.evaluation.interactive.InteractivePredictor`), given here or bound later with
    :meth:`bind_predictor` (e.g. by a hook that wraps the runner's model).

    Reported: ``NoC@thr`` / ``NoF@thr`` for ``noc_thrs``, ``mIoU@k`` for k = 1..max_clicks
    (only ``mIoU@1`` when ``target_iou`` stopped a session early), ``box_mIoU`` when ``box_prompt``
    (the GT box ``gt_instances.bboxes`` xyxy, or the mask's tight box without bboxes) and
    ``num_objects``. RAP-SAM's COCO-SAM single-click mIoU is ``mIoU@1`` with ``max_clicks=1`` on
    a dataset whose ``gt_instances`` hold every panoptic segment (things and stuff).
    """

    default_prefix: Optional[str] = 'interactive'

    def __init__(self,
                 predictor: Optional[InteractivePredictor] = None,
                 max_clicks: int = 20,
                 noc_thrs: Sequence[float] = (0.5, 0.8, 0.85, 0.9),
                 pred_thr: float = 0.49,
                 target_iou: Optional[float] = None,
                 box_prompt: bool = True,
                 ignore_label: int = -1,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if max_clicks < 1:
            raise ValueError(f'max_clicks must be >= 1, got {max_clicks}')
        self.predictor = predictor
        self.max_clicks = max_clicks
        self.noc_thrs = tuple(noc_thrs)
        self.pred_thr = pred_thr
        self.target_iou = target_iou
        self.box_prompt = box_prompt
        self.ignore_label = ignore_label

    def bind_predictor(self, predictor: InteractivePredictor) -> None:
        """Set the callable the click loop drives."""
        self.predictor = predictor

    def process(self, data_batch: dict, data_samples: Sequence[Any]) -> None:
        if self.predictor is None:
            raise RuntimeError('InteractiveSegMetric has no predictor: pass predictor= or call '
                               'bind_predictor(...) before evaluation')
        images = data_batch['inputs']
        if len(images) != len(data_samples):
            raise ValueError(f'{len(images)} images but {len(data_samples)} data samples')
        for image, sample in zip(images, data_samples):
            # One entry per sample: mmengine truncates the collected results to the dataset size.
            self.results.append(self._evaluate_sample(to_numpy(image), sample))

    def _evaluate_sample(self, image: np.ndarray, sample: Any) -> List[dict]:
        name = get_field(sample, 'img_path', '?')
        # [3, H, W] tensor from the pipeline -> [H, W, 3] image for the predictor.
        if image.ndim == 3 and image.shape[0] == 3:
            image = np.ascontiguousarray(image.transpose(1, 2, 0))
        gt_instances = get_field(sample, 'gt_instances')
        if gt_instances is None or get_field(gt_instances, 'masks') is None:
            raise KeyError(f'{name}: data sample has no gt_instances.masks')
        masks = to_numpy(get_field(gt_instances, 'masks')).astype(bool)
        if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
            raise ValueError(f'{name}: GT masks {masks.shape} do not match the image '
                             f'{image.shape[:2]}')
        boxes = get_field(gt_instances, 'bboxes')
        boxes = None if boxes is None else to_numpy(getattr(boxes, 'tensor', boxes))
        ignore = get_field(sample, 'ignore_mask')
        if ignore is not None:
            ignore = to_numpy(get_field(ignore, 'data')).reshape(image.shape[:2]).astype(bool)
        results = []
        for i, mask in enumerate(masks):
            if not mask.any():
                MMLogger.get_current_instance().warning(
                    f'{name}: GT object {i} has an empty mask; skipped')
                continue
            gt = mask.astype(np.int64)
            if ignore is not None:
                gt[ignore & ~mask] = self.ignore_label
            box = None
            if self.box_prompt:
                box = boxes[i] if boxes is not None else mask_to_box(mask)
            results.append(evaluate_object(image, gt, self.predictor, self.max_clicks,
                                           self.pred_thr, self.target_iou, box, self.ignore_label))
        return results

    def compute_metrics(self, results: List[List[dict]]) -> Dict[str, float]:
        objects = [obj for sample in results for obj in sample]
        return summarize_objects(objects, self.noc_thrs, self.max_clicks)
