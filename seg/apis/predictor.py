"""High-level inference: build a model from a config (+ local checkpoint) and run it on images."""
import os.path as osp
import warnings
from typing import Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.runner import load_checkpoint

import seg  # noqa: F401  (registration)
from seg.registry import MODELS
from seg.structures import build_prompts

ImageLike = Union[str, np.ndarray]


class SegPredictor:
    """Run a RapSAM / FastSAM2 model on single images, SAM-predictor style.

    Images are decoded once (BGR, as mmcv reads them) and resized on the model's device by the data
    preprocessor (its ``resize_longest_side``), so prompts are given in ORIGINAL image pixels and
    results come back at the original resolution.

    Args:
        model: a built ``RapSAM`` (weights loaded); use ``from_config`` to build one.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.eval()
        self.class_names = list(model.class_names)

    @classmethod
    def from_config(cls, config: Union[str, Config], checkpoint: Optional[str] = None,
                    device: str = 'cpu', image_size: Optional[int] = 1024,
                    cfg_options: Optional[dict] = None) -> 'SegPredictor':
        """Build the config's model, load a LOCAL checkpoint (None keeps the random init, with a
        warning) and set the longer side the preprocessor resizes to (None: as given).

        ``cfg_options`` are merged into the config, e.g. ``{'model.test_cfg.object_mask_thr': 0.5}``.
        """
        if isinstance(config, str):
            if not osp.isfile(config):
                raise FileNotFoundError(f'config file not found: {config}')
            config = Config.fromfile(config)
        if cfg_options:
            config.merge_from_dict(cfg_options)
        model_cfg = config.model
        model_cfg.data_preprocessor.resize_longest_side = image_size
        model = MODELS.build(model_cfg)
        if checkpoint is None:
            warnings.warn('SegPredictor: no checkpoint given, the model has RANDOM weights')
        else:
            if not osp.isfile(checkpoint):
                raise FileNotFoundError(f'checkpoint file not found: {checkpoint}')
            load_checkpoint(model, checkpoint, map_location='cpu')
        return cls(model.to(device))

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

    def _run(self, img: np.ndarray, sample: DetDataSample) -> DetDataSample:
        h, w = img.shape[:2]
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0)))
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        with torch.no_grad():
            return self.model.test_step(dict(inputs=[inputs], data_samples=[sample]))[0]

    def panoptic(self, image: ImageLike) -> DetDataSample:
        """Panoptic (and, if the config's ``instance_on``, instance) segmentation of one image:
        ``pred_panoptic_seg.sem_seg`` = label + instance id * ``INSTANCE_OFFSET``."""
        return self._run(self._load(image), DetDataSample())

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
        sample = DetDataSample()
        sample.prompts = prompts
        return self._run(img, sample)
