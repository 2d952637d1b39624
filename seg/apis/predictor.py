"""``SegPredictor``: file / BGR-array convenience over ``FastSAM2ImagePredictor`` (prompts as
``DetDataSample`` results for the overlay drawers) plus whole-image panoptic segmentation."""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import PixelData

from seg.structures import build_prompts
from seg.utils.precision import autocast
from seg.utils.validation import DEFAULT_MAX_INPUT_PIXELS, check_image, check_mask, read_image_file

from .image_predictor import DEFAULT_IMAGE_SIZE, FastSAM2ImagePredictor, build_model

ImageLike = Union[str, np.ndarray]


class SegPredictor:
    """Run a RapSAM / FastSAM2 model on single images given as files or BGR arrays (mmcv order).

    ``prompt`` goes through ``FastSAM2ImagePredictor`` (``image_predictor``): prompts in ORIGINAL
    image pixels, the image embedding cached, so prompting the same array object again runs only
    the prompt path. ``panoptic`` runs the model's panoptic path (object queries, panoptic fusion
    head). Both resize on the model's device by the data preprocessor's ``resize_longest_side``
    and report at the original resolution.

    Memory: the panoptic fusion runs at the smaller of the original and the processing size; a
    larger original gets the fused id map upsampled (nearest), so an 8000 x 6000 input never holds
    its 100 query masks at full resolution (see ``panoptic``).

    Args:
        model: a built ``RapSAM`` (weights loaded); use ``from_config`` to build one.
        max_input_pixels: images above this many pixels are rejected (None: no cap).
        precision: ``'fp32'``, ``'fp16'`` or ``'bf16'`` (autocast; see ``FastSAM2ImagePredictor``).
    """

    def __init__(self, model: torch.nn.Module,
                 max_input_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS,
                 precision: str = 'fp32') -> None:
        self.image_predictor = FastSAM2ImagePredictor(model, max_input_pixels=max_input_pixels,
                                                      precision=precision)
        self.max_input_pixels = max_input_pixels
        self.model = self.image_predictor.model
        self.class_names = list(model.class_names)
        self._image_ref: Optional[np.ndarray] = None  # the BGR array whose embedding is cached

    @classmethod
    def from_config(cls, config: Union[str, Config], checkpoint: Optional[str] = None,
                    device: str = 'cpu', image_size: Optional[int] = DEFAULT_IMAGE_SIZE,
                    cfg_options: Optional[dict] = None,
                    max_input_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS,
                    precision: str = 'fp32') -> 'SegPredictor':
        """See ``FastSAM2ImagePredictor.from_config``."""
        return cls(build_model(config, checkpoint, device, image_size, cfg_options),
                   max_input_pixels, precision)

    def _load(self, image: ImageLike) -> np.ndarray:
        if isinstance(image, str):
            return read_image_file(image, 'image file', self.max_input_pixels, mode='BGR')
        # a contiguous array comes back as the same object: the embedding cache is keyed on it
        return check_image(image, 'image (a path or an array)', self.max_input_pixels, order='BGR')

    def set_image(self, image: ImageLike) -> np.ndarray:
        """Cache the embedding of a BGR image (skipped when it is the array cached last)."""
        img = self._load(image)
        if img is not self._image_ref:
            self.image_predictor.set_image(img[..., ::-1])
            self._image_ref = img
        return img

    @torch.no_grad()
    def panoptic(self, image: ImageLike, rescale: bool = True) -> DetDataSample:
        """Panoptic (and, if the config's ``instance_on``, instance) segmentation of one image:
        ``pred_panoptic_seg.sem_seg`` = label + instance id * ``INSTANCE_OFFSET``.

        The fusion head runs at ``fusion_shape``: the original size when it has no more pixels
        than the processed image, else the processed image size (``img_shape``). With
        ``rescale`` the maps come back at the original size (nearest upsampling of the fused
        maps when they were fused smaller: one id map, never the query masks); without it they
        stay at ``fusion_shape`` (the metainfo's ``ori_shape`` then is ``fusion_shape``,
        ``input_shape`` the original size). Instance masks (``pred_instances.masks``) always stay
        at ``fusion_shape`` (``upsample_nearest`` in ``demo_runner`` brings one to the input
        size); their ``bboxes`` are in input pixels with ``rescale``."""
        img = self._load(image)
        ori = tuple(img.shape[:2])
        inputs, sample = self.image_predictor.preprocess(img, bgr=True)
        processed = tuple(sample.img_shape[:2])
        fused = ori if ori[0] * ori[1] <= processed[0] * processed[1] else processed
        sample.set_metainfo(dict(ori_shape=fused, input_shape=ori, fusion_shape=fused))
        with autocast(inputs.device, self.image_predictor.precision):
            result = self.model.predict(inputs, [sample], rescale=True)[0]
        if 'pred_instances' in result:  # float32 whatever the precision
            inst = result.pred_instances
            for key, value in list(inst.items()):
                if isinstance(value, torch.Tensor) and value.is_floating_point():
                    setattr(inst, key, value.float())
        if rescale and fused != ori:
            rows, cols = nearest_index(fused[0], ori[0]), nearest_index(fused[1], ori[1])
            if 'pred_panoptic_seg' in result:
                pan = result.pred_panoptic_seg.sem_seg.to(torch.int32)  # label + id * 1000 fits
                result.pred_panoptic_seg = PixelData(
                    sem_seg=pan[:, rows.to(pan.device)][..., cols.to(pan.device)])
            if 'pred_instances' in result and 'bboxes' in result.pred_instances:
                # instance masks stay at fusion_shape (up to max_per_image of them at the input
                # size is what must not be allocated); their boxes are in input pixels
                inst = result.pred_instances
                sy, sx = ori[0] / fused[0], ori[1] / fused[1]
                inst.bboxes = inst.bboxes * inst.bboxes.new_tensor([sx, sy, sx, sy])
            result.set_metainfo(dict(ori_shape=ori))
        return result

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
        if masks is not None:
            masks = check_mask(masks, 'mask prompts', img.shape[:2], ndim=3)
        prompts = build_prompts(points=points, point_labels=point_labels,
                                bboxes=None if boxes is None else [b or [0.0] * 4 for b in boxes],
                                box_valid=None if boxes is None else [b is not None for b in boxes],
                                masks=None if masks is None else torch.as_tensor(masks).float(),
                                texts=texts)
        self.set_image(img)
        return self.image_predictor.predict_instances(prompts)


def nearest_index(src: int, dst: int) -> torch.Tensor:
    """For nearest upsampling of a length-``src`` axis to ``dst``: the source index of every
    destination index (pixel centres: ``floor((i + 0.5) * src / dst)``), non-decreasing."""
    idx = ((torch.arange(dst, dtype=torch.float64) + 0.5) * (src / dst)).floor().long()
    return idx.clamp_(0, src - 1)


def nearest_extent(index: torch.Tensor, first: int, last: int) -> Tuple[int, int]:
    """The destination range ``[start, stop)`` whose source indices lie in ``first..last``
    (``index`` from ``nearest_index``)."""
    return (int(torch.searchsorted(index, first)), int(torch.searchsorted(index, last, right=True)))
