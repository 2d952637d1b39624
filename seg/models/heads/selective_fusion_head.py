"""Panoptic / instance fusion that brings to full resolution only the masks it keeps."""
from typing import Tuple

import torch
import torch.nn.functional as F
from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead
from mmdet.structures import DetDataSample
from mmdet.structures.mask import mask2bbox
from mmengine.structures import InstanceData

from seg.registry import MODELS

from ..utils.mask_geometry import to_output_res


@MODELS.register_module()
class SelectiveFusionHead(MaskFormerFusionHead):
    """``MaskFormerFusionHead`` fed with the decoder's low-resolution mask logits.

    mmdet's head takes every query's mask at the output resolution: a detector upsamples all
    ``num_queries`` masks (100) to the input and then to the original image before the fusion
    keeps a handful of them. That upsampling dominated panoptic post-processing (about a second per
    1080p frame on a CPU) and made its memory grow with 100 x the input's pixel count.

    ``predict_grid`` selects first, on the class scores alone, and upsamples only what is used:

    - panoptic: the queries that pass ``object_mask_thr`` (the only ones the fusion reads);
    - instances: the distinct queries of the top ``max_per_image`` (query, class) pairs that are
      things, one at a time (``chunk`` masks at once), each mask's binary map and score computed
      once however many pairs share the query.

    The kept masks go through the same resampling chain as before (mask grid -> padded input ->
    crop -> original size), so the results equal mmdet's head on the fully upsampled masks.
    """

    def __init__(self, *args, chunk: int = 8, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if chunk < 1:
            raise ValueError(f'SelectiveFusionHead: chunk must be >= 1, got {chunk}')
        self.chunk = chunk

    def predict_grid(self, mask_cls: torch.Tensor, mask_logits: torch.Tensor,
                     sample: DetDataSample, input_hw: Tuple[int, int], rescale: bool) -> dict:
        """One image: class logits ``[Q, K+1]`` and mask logits on the mask grid ``[Q, h, w]`` ->
        ``{'pan_results': PixelData, 'ins_results': InstanceData}`` (as ``test_cfg`` enables) at
        the original resolution (``rescale``) or the unpadded input's."""
        if mask_cls.dim() != 2 or mask_logits.dim() != 3 or len(mask_cls) != len(mask_logits):
            raise ValueError(f'SelectiveFusionHead: expects class logits [Q, K+1] and mask logits '
                             f'[Q, h, w] for the same Q, got {tuple(mask_cls.shape)} and '
                             f'{tuple(mask_logits.shape)}')
        if self.test_cfg.get('semantic_on', False):
            raise ValueError('SelectiveFusionHead: semantic results are not supported (as in '
                             "mmdet's MaskFormerFusionHead); set test_cfg.semantic_on=False")
        result = {}
        if self.test_cfg.get('panoptic_on', True):
            scores, labels = F.softmax(mask_cls, dim=-1).max(-1)
            keep = labels.ne(self.num_classes) & (scores > self.test_cfg.get('object_mask_thr', 0.8))
            masks = self._upsample(mask_logits[keep], sample, input_hw, rescale)
            result['pan_results'] = self.panoptic_postprocess(mask_cls[keep], masks)
        if self.test_cfg.get('instance_on', False):
            result['ins_results'] = self._instances(mask_cls, mask_logits, sample, input_hw, rescale)
        return result

    def _instances(self, mask_cls: torch.Tensor, mask_logits: torch.Tensor, sample: DetDataSample,
                   input_hw: Tuple[int, int], rescale: bool) -> InstanceData:
        """mmdet's ``instance_postprocess``, upsampling each distinct kept query once."""
        scores = F.softmax(mask_cls, dim=-1)[:, :-1]
        top_scores, top = scores.flatten().topk(self.test_cfg.get('max_per_image', 100), sorted=False)
        labels, queries = top % self.num_classes, top // self.num_classes
        things = labels < self.num_things_classes
        top_scores, labels, queries = top_scores[things], labels[things], queries[things]
        distinct, row_of = torch.unique(queries, return_inverse=True)
        h, w = self._output_hw(sample, rescale)
        binary = torch.zeros(len(distinct), h, w, dtype=torch.bool, device=mask_logits.device)
        mask_scores = mask_logits.new_zeros(len(distinct))
        for start in range(0, len(distinct), self.chunk):
            idx = distinct[start:start + self.chunk]
            up = self._upsample(mask_logits[idx], sample, input_hw, rescale)
            fg = up > 0
            binary[start:start + len(idx)] = fg
            mask_scores[start:start + len(idx)] = (up.sigmoid() * fg).flatten(1).sum(1) / (
                fg.flatten(1).sum(1) + 1e-6)
        masks = binary[row_of]
        return InstanceData(bboxes=mask2bbox(masks), labels=labels,
                            scores=top_scores * mask_scores[row_of], masks=masks)

    @staticmethod
    def _output_hw(sample: DetDataSample, rescale: bool) -> Tuple[int, int]:
        return tuple((sample.ori_shape if rescale else sample.img_shape)[:2])

    @staticmethod
    def _upsample(logits: torch.Tensor, sample: DetDataSample, input_hw: Tuple[int, int],
                  rescale: bool) -> torch.Tensor:
        """``[N, h, w]`` grid logits -> padded input -> unpadded -> original size (``rescale``)."""
        if not len(logits):  # interpolate rejects empty inputs
            h, w = SelectiveFusionHead._output_hw(sample, rescale)
            return logits.new_zeros(0, h, w)
        return to_output_res(logits, sample, input_hw, rescale)
