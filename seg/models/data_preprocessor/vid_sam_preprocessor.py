"""Video preprocessor: clips [T, C, H, W] per sample, with per-frame prompts and optional resize."""
import torch
from mmdet.models.data_preprocessors import TrackDataPreprocessor
from mmdet.structures import TrackDataSample

from seg.registry import MODELS

from .prompt_utils import ResizeLongestSideMixin, pad_prompt_masks, resize_sample
from .seg_data_preprocessor import SegDataPreprocessor


@MODELS.register_module()
class VideoSegDataPreprocessor(ResizeLongestSideMixin, TrackDataPreprocessor):
    """``TrackDataPreprocessor`` (batched clips ``[B, T, C, H, W]``) that also handles per-frame
    ``prompts`` and an optional on-device resize of every frame (see ``SegDataPreprocessor``).

    A batch of images (``DetDataSample``s, not clips) goes through a ``SegDataPreprocessor`` with
    the same settings (``[B, C, H, W]``), so one model trains on alternating image and clip batches
    (``MultiTaskSampler``) and serves images and videos with one preprocessor.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        image_kwargs = {k: v for k, v in kwargs.items() if k != 'use_det_processor'}
        self.image_preprocessor = SegDataPreprocessor(**image_kwargs)

    def forward(self, data: dict, training: bool = False) -> dict:
        samples = data.get('data_samples')
        if samples and not isinstance(samples[0], TrackDataSample):
            return self.image_preprocessor(data, training)
        data = self.cast_data(data)
        samples = data.get('data_samples')
        longest = self.longest_side(training)
        if longest is not None:
            if samples is None:
                raise ValueError('VideoSegDataPreprocessor: resizing needs data_samples')
            data['inputs'] = [
                torch.stack([resize_sample(frame, track[t], longest, training)
                             for t, frame in enumerate(clip)])
                for clip, track in zip(data['inputs'], samples)]
        data = super().forward(data, training)
        if data['data_samples'] is not None:
            for track in data['data_samples']:
                pad_prompt_masks(list(track.video_data_samples), data['inputs'].shape[-2:])
        return data
