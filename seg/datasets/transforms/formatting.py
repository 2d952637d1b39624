"""Packing transforms: mmdet's packers plus FastSAM2's prompts and video void maps."""
import numpy as np
import torch
from mmdet.datasets.transforms import PackDetInputs, PackTrackInputs
from mmdet.structures.bbox import BaseBoxes
from mmengine.structures import PixelData

from seg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackSegInputs(PackDetInputs):
    """mmdet's ``PackDetInputs`` that also moves ``results['prompts']`` to ``data_sample.prompts``."""

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        if 'prompts' in results:
            packed['data_samples'].prompts = results['prompts']
        return packed


@TRANSFORMS.register_module()
class PackSegTrackInputs(PackTrackInputs):
    """mmdet's ``PackTrackInputs`` (a ``TrackDataSample`` of per-frame ``DetDataSample``s) plus:

    - ``results['prompts']`` (a list, one entry per frame, ``None`` for frames without prompts)
      -> ``video_data_samples[i].prompts``;
    - ``results['gt_seg_map']`` (a list of per-frame void maps, 255 = void / ignore, 0 = valid)
      -> ``video_data_samples[i].ignore_mask``, a ``PixelData`` whose ``data`` is a bool
      [1, H, W] tensor, True where the pixel must be ignored by losses and metrics (DAVIS void,
      and the padding that geometric transforms fill with 255).

    Per-frame ``gt_bboxes`` may be ``HorizontalBoxes`` (what mmdet's geometric transforms need);
    they are packed as plain [N, 4] tensors, mmdet's video convention. Frame metainfo keys are
    mmdet's defaults (``img_path``, ``frame_id``, ``ori_shape``, ``img_shape``, ``video_length``,
    ...) plus ``meta_keys``.
    """

    def transform(self, results: dict) -> dict:
        if 'gt_bboxes' in results:
            results = dict(results, gt_bboxes=[b.tensor if isinstance(b, BaseBoxes) else b
                                               for b in results['gt_bboxes']])
        packed = super().transform(results)
        frames = packed['data_samples'].video_data_samples
        prompts = results.get('prompts')
        if prompts is not None:
            if len(prompts) != len(frames):
                raise ValueError(f'PackSegTrackInputs: {len(prompts)} prompt entries for '
                                 f'{len(frames)} frames')
            for frame, frame_prompts in zip(frames, prompts):
                if frame_prompts is not None:
                    frame.prompts = frame_prompts
        void_maps = results.get('gt_seg_map')
        if void_maps is not None:
            if len(void_maps) != len(frames):
                raise ValueError(f'PackSegTrackInputs: {len(void_maps)} void maps for '
                                 f'{len(frames)} frames')
            for frame, void in zip(frames, void_maps):
                frame.ignore_mask = PixelData(data=torch.from_numpy(np.asarray(void)[None] == 255))
        return packed
