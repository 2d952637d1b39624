"""``SegPredictor``: file / BGR-array convenience over ``FastSAM2ImagePredictor`` (prompts as
``DetDataSample`` results for the overlay drawers) plus whole-image panoptic segmentation."""
import os.path as osp
from typing import Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config

from seg.structures import build_prompts
from .image_predictor import DEFAULT_IMAGE_SIZE, FastSAM2ImagePredictor, build_model

ImageLike = Union[str, np.ndarray]


class SegPredictor:
    """Run a RapSAM / FastSAM2 model on single images given as files or BGR arrays (mmcv order).

    ``prompt`` goes through ``FastSAM2ImagePredictor`` (``image_predictor``): prompts in ORIGINAL
    image pixels, the image embedding cached, so prompting the same array object again runs only
    the prompt path. ``panoptic`` runs the model's own ``test_step`` (panoptic fusion head). Both
    resize on the model's device by the data preprocessor's ``resize_longest_side`` and report at
    the original resolution.

    Args:
        model: a built ``RapSAM`` (weights loaded); use ``from_config`` to build one.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.image_predictor = FastSAM2ImagePredictor(model)
        self.model = self.image_predictor.model
        self.class_names = list(model.class_names)
        self._image_ref: Optional[np.ndarray] = None  # the BGR array whose embedding is cached

    @classmethod
    def from_config(cls, config: Union[str, Config], checkpoint: Optional[str] = None,
                    device: str = 'cpu', image_size: Optional[int] = DEFAULT_IMAGE_SIZE,
                    cfg_options: Optional[dict] = None) -> 'SegPredictor':
        """See ``FastSAM2ImagePredictor.from_config``."""
        return cls(build_model(config, checkpoint, device, image_size, cfg_options))

    @staticmethod
    def _load(image: ImageLike) -> np.ndarray:
        if isinstance(image, str):
            if not osp.isfile(image):
                raise FileNotFoundError(f'image file not found: {image}')
            return mmcv.imread(image)
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
                and image.dtype == np.uint8):
            raise ValueError('image must be a path or a uint8 BGR array [H, W, 3], got '
                             f'{getattr(image, "shape", type(image))}')
        return image

    def set_image(self, image: ImageLike) -> np.ndarray:
        """Cache the embedding of a BGR image (skipped when it is the array cached last)."""
        img = self._load(image)
        if img is not self._image_ref:
            self.image_predictor.set_image(img[..., ::-1])
            self._image_ref = img
        return img

    def panoptic(self, image: ImageLike) -> DetDataSample:
        """Panoptic (and, if the config's ``instance_on``, instance) segmentation of one image:
        ``pred_panoptic_seg.sem_seg`` = label + instance id * ``INSTANCE_OFFSET``."""
        img = self._load(image)
        h, w = img.shape[:2]
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             scale_factor=(1.0, 1.0)))
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        with torch.no_grad():
            return self.model.test_step(dict(inputs=[inputs], data_samples=[sample]))[0]

    def prompt(self, image: ImageLike, points: Optional[Sequence] = None,
               point_labels: Optional[Sequence] = None, boxes: Optional[Sequence] = None,
               masks: Optional[np.ndarray] = None, texts: Optional[Sequence[str]] = None
               ) -> DetDataSample:
        """Interactive segmentation: one mask per prompted object (``pred_instances``).

        Args (one row per object, any subset, in original-image pixels):
            points / point_labels: per object a list of (x, y) and of labels (1 pos, 0 neg).
            boxes: per object x1, y1, x2, y2, or None for an object without a box.
            masks: [N, H, W] mask prompts at image size.
            texts: per object a text ('' for none).
        """
        img = self._load(image)
        if masks is not None and tuple(np.shape(masks)[-2:]) != img.shape[:2]:
            raise ValueError(f'mask prompts {np.shape(masks)} must have the image size {img.shape[:2]}')
        prompts = build_prompts(points=points, point_labels=point_labels,
                                bboxes=None if boxes is None else [b or [0.0] * 4 for b in boxes],
                                box_valid=None if boxes is None else [b is not None for b in boxes],
                                masks=None if masks is None else torch.as_tensor(masks).float(),
                                texts=texts)
        self.set_image(img)
        return self.image_predictor.predict_instances(prompts)
