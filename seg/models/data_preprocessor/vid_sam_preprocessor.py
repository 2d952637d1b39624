"""Video preprocessor: clips [T, C, H, W] per sample, with per-frame prompts and optional resize."""
import torch
from mmdet.models.data_preprocessors import TrackDataPreprocessor

from seg.registry import MODELS
from .prompt_utils import ResizeLongestSideMixin, pad_prompt_masks, resize_sample


@MODELS.register_module()
class VideoSegDataPreprocessor(ResizeLongestSideMixin, TrackDataPreprocessor):
    """``TrackDataPreprocessor`` (batched clips ``[B, T, C, H, W]``) that also handles per-frame
    ``prompts`` and an optional on-device resize of every frame (see ``SegDataPreprocessor``)."""

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        samples = data.get('data_samples')
        if self.resize_longest_side is not None:
            if samples is None:
                raise ValueError('VideoSegDataPreprocessor: resizing needs data_samples')
            data['inputs'] = [
                torch.stack([resize_sample(frame, track[t], self.resize_longest_side, training)
                             for t, frame in enumerate(clip)])
                for clip, track in zip(data['inputs'], samples)]
        data = super().forward(data, training)
        if data['data_samples'] is not None:
            for track in data['data_samples']:
                pad_prompt_masks(list(track.video_data_samples), data['inputs'].shape[-2:])
        return data
