"""Image preprocessor: normalise, optional on-device resize, pad to a multiple of 32, carry prompts."""
from mmdet.models.data_preprocessors import DetDataPreprocessor

from seg.registry import MODELS

from .prompt_utils import ResizeLongestSideMixin, pad_prompt_masks, resize_sample


@MODELS.register_module()
class SegDataPreprocessor(ResizeLongestSideMixin, DetDataPreprocessor):
    """``DetDataPreprocessor`` that also handles ``data_sample.prompts``.

    Args:
        resize_longest_side: if set, each image is resized on the device so its longer side has this
            length (the real-time inference path); prompts are scaled with it, and so is the
            ground truth when training.
        test_resize_longest_side: the size at inference, if not ``resize_longest_side``.
        **kwargs: ``DetDataPreprocessor`` arguments (mean, std, bgr_to_rgb, pad_size_divisor, ...).
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        samples = data.get('data_samples')
        longest = self.longest_side(training)
        if longest is not None:
            if samples is None:
                raise ValueError('SegDataPreprocessor: resizing needs data_samples to record the scale')
            data['inputs'] = [resize_sample(img, s, longest, training)
                              for img, s in zip(data['inputs'], samples)]
        data = super().forward(data, training)
        if data['data_samples'] is not None:
            pad_prompt_masks(data['data_samples'], data['inputs'].shape[-2:])
        return data
