"""SAM2-compatible image predictor: the image embedding is computed once, every prompt reuses it.

    predictor = FastSAM2ImagePredictor.from_config('configs/fastsam2/model_fastsam2_tiny.py', ckpt)
    predictor.set_image(rgb)                       # backbone + neck, once
    masks, scores, logits = predictor.predict(point_coords=[[320, 200]], point_labels=[1])
    masks, scores, _ = predictor.predict(point_coords=[[320, 200], [100, 80]], point_labels=[1, 0],
                                         mask_input=logits[np.argmax(scores)][None],
                                         multimask_output=False)   # prompt path only

Processing size: the image is resized on the model's device so that its longer side is the model
data preprocessor's ``resize_longest_side`` (``from_config`` sets it, default ``DEFAULT_IMAGE_SIZE``
= 512; ``image_size=1024`` is SAM2's size) and padded to its ``pad_size_divisor``; prompts are
given in ORIGINAL image pixels and masks come back at the original resolution.
"""
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmengine.structures import InstanceData
from PIL import Image

import seg  # noqa: F401  (registration)
from seg.models.utils.mask_geometry import image_region, to_output_masks, to_output_res
from seg.registry import MODELS
from seg.structures import scale_prompts
from seg.utils.precision import autocast, check_precision
from seg.utils.validation import (
    DEFAULT_MAX_INPUT_PIXELS,
    check_boxes,
    check_finite,
    check_image,
    check_mask,
    check_points,
)

ImageInput = Union[np.ndarray, Image.Image]
ArrayLike = Union[np.ndarray, Sequence, torch.Tensor]
# the documented processing size (longer side) of every entry point built by ``from_config``:
# 512, not SAM2's 1024, because it costs no accuracy by the speed issue's rule (held-out DAVIS J&F
# of the trained tiny VOS model 0.525 at 512 vs 0.462 at 1024) and cuts the encoder's pixels 4x
# (docs/benchmarks/NOTES.md section 10); pass image_size=1024 for SAM2's size
DEFAULT_IMAGE_SIZE = 512
# logit magnitude of a binary mask turned into a mask prompt (``mask_to_low_res``)
MASK_LOGIT = 10.0


class FastSAM2ImagePredictor:
    """SAM2's ``SAM2ImagePredictor`` API for a RapSAM / FastSAM2 model.

    ``set_image`` runs the backbone and neck once (``RapSAM.encode_image``); each ``predict``
    then runs only the prompt path (``RapSAM.decode_prompts``: prompt encoder, prompt queries at
    the TaskRouter's interactive depth, prompt refiner, IoU head). Objects are decoded
    independently: prompting object B never changes object A's mask.

    Channel order: SAM2 takes RGB images, and so does this predictor. The model's data
    preprocessor expects the data loader's BGR order (it converts with ``bgr_to_rgb``), so the
    image is handed to it as BGR; without ``bgr_to_rgb`` the model runs on BGR, as it was trained.

    Args:
        model: a built ``RapSAM`` (weights loaded); see ``from_config``.
        mask_threshold: logit threshold of the binary masks (``return_logits=False``).
        max_input_pixels: images above this many pixels are rejected (None: no cap); see
            ``seg.utils.validation``.
        precision: ``'fp32'``, or ``'fp16'`` / ``'bf16'``: the model runs under ``torch.autocast``
            on its device (``seg.utils.precision``; bf16 also on CPU). Outputs are float32 / bool
            whatever the precision.

    Inputs are checked by ``seg.utils.validation`` (its docstring has the policy: NaN / inf
    prompts are rejected, points and box corners slightly outside the image are clipped, farther
    ones rejected). Memory: binary masks are upsampled to the original size one at a time, so a
    huge input costs one float map plus the boolean masks returned.
    """

    def __init__(self, model: torch.nn.Module, mask_threshold: float = 0.0,
                 max_input_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS,
                 precision: str = 'fp32') -> None:
        self.model = model.eval()
        self.mask_threshold = mask_threshold
        self.max_input_pixels = max_input_pixels
        check_precision(precision, self.device)
        self.precision = precision
        self._warned_single = False
        self.reset_predictor()

    @classmethod
    def from_config(cls, config: Union[str, Config], checkpoint: Optional[str] = None,
                    device: str = 'cpu', image_size: Optional[int] = DEFAULT_IMAGE_SIZE,
                    cfg_options: Optional[dict] = None, **kwargs) -> 'FastSAM2ImagePredictor':
        """Build the config's model, load a LOCAL checkpoint (None keeps the random init, with a
        loud warning) and set the longer side the preprocessor resizes to (None: as given).

        ``cfg_options`` are merged into the config, e.g. ``{'model.test_cfg.object_mask_thr': 0.5}``;
        ``kwargs`` go to the constructor (``precision``, ``mask_threshold``, ...).
        """
        return cls(build_model(config, checkpoint, device, image_size, cfg_options), **kwargs)

    # ------------------------------------------------------------------ state
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def is_image_set(self) -> bool:
        return self._features is not None

    def reset_predictor(self) -> None:
        """Forget the image(s) and their embedding."""
        self._features: Optional[torch.Tensor] = None  # [B, C, 1, h, w]
        # the head's per-image projections of the embedding, filled by the first decode of all
        # the images and reused by the next ones (``RapSAMVideoHead.decode``'s ``feat_cache``)
        self._feat_cache: Dict[str, torch.Tensor] = {}
        self._samples: List[DetDataSample] = []  # per image: img_shape, ori_shape, scale_factor
        self._input_hw: Optional[Tuple[int, int]] = None  # padded network input
        self._is_batch = False

    def set_image(self, image: ImageInput) -> None:
        """Compute the embedding of one RGB image (``np.ndarray`` uint8 ``[H, W, 3]`` or PIL)."""
        self._set([image])
        self._is_batch = False

    def set_image_batch(self, images: Sequence[ImageInput]) -> None:
        """Compute the embeddings of several RGB images in one backbone pass (padded to the
        largest), for ``predict_batch``."""
        if isinstance(images, (np.ndarray, Image.Image)) or not len(images):
            raise ValueError('set_image_batch: give a non-empty list of images')
        self._set(list(images))
        self._is_batch = True

    def adopt_image(self, source: 'FastSAM2ImagePredictor', index: int = 0) -> None:
        """Make image ``index`` of ``source`` (set by ``set_image`` / ``set_image_batch``) this
        predictor's image, reusing its embedding (a server embeds several sessions' images in
        one backbone pass, then gives each session its own)."""
        if not source.is_image_set or not 0 <= index < len(source._samples):
            raise ValueError(f'adopt_image: the source holds {len(source._samples)} image(s), '
                             f'no image {index}')
        self.reset_predictor()
        self._features = source._features[index:index + 1]
        self._samples = [source._samples[index]]
        self._input_hw = source._input_hw

    @classmethod
    def stack(cls, predictors: Sequence['FastSAM2ImagePredictor']) -> 'FastSAM2ImagePredictor':
        """One predictor holding the single images of ``predictors`` (one model, equal network
        input sizes) as a batch for ``predict_batch``: one decode for several images' prompts."""
        if not predictors or any(not p.is_image_set or p._is_batch for p in predictors):
            raise ValueError('FastSAM2ImagePredictor.stack: give predictors with one image each')
        sizes = {p._input_hw for p in predictors}
        if len(sizes) != 1 or len({id(p.model) for p in predictors}) != 1:
            raise ValueError(f'FastSAM2ImagePredictor.stack: one model and one input size needed, '
                             f'got input sizes {sorted(sizes)}')
        batch = cls(predictors[0].model, max_input_pixels=predictors[0].max_input_pixels,
                    precision=predictors[0].precision)
        batch._features = torch.cat([p._features for p in predictors])
        batch._samples = [p._samples[0] for p in predictors]
        batch._input_hw = sizes.pop()
        batch._is_batch = True
        return batch

    @torch.no_grad()
    def preprocess(self, image: ImageInput, name: str = 'image', bgr: bool = False
                   ) -> Tuple[torch.Tensor, DetDataSample]:
        """One RGB image (``bgr``: a BGR array, as mmcv loads it) -> the normalised, resized,
        padded network input ``[1, 3, H', W']`` on the model's device and its sample
        (``img_shape``, ``ori_shape``, ``scale_factor``)."""
        img = check_image(image, name, self.max_input_pixels, order='BGR' if bgr else 'RGB')
        # the preprocessor expects the loader's BGR order (see the class docstring); one host
        # copy into [3, H, W] whatever the input order
        chw = (img if bgr else img[..., ::-1]).transpose(2, 0, 1)
        return self.model.preprocess_frame(torch.from_numpy(np.ascontiguousarray(chw)).to(self.device))

    def _set(self, images: List[ImageInput]) -> None:
        self.reset_predictor()
        inputs, samples = [], []
        with torch.no_grad():
            for i, image in enumerate(images):
                x, sample = self.preprocess(image, f'image {i}' if len(images) > 1 else 'image')
                inputs.append(x)
                samples.append(sample)
            h = max(x.shape[-2] for x in inputs)
            w = max(x.shape[-1] for x in inputs)
            # pad like the preprocessor batches (zeros after normalisation, bottom / right)
            batch = torch.cat([F.pad(x, (0, w - x.shape[-1], 0, h - x.shape[-2])) for x in inputs])
            with autocast(self.device, self.precision):
                # kept fp32: the embedding is an output (get_image_embedding)
                self._features = self.model.encode_image(batch).float()
        self._feat_cache = {}
        self._samples, self._input_hw = samples, (h, w)

    def get_image_embedding(self) -> torch.Tensor:
        """The cached embedding ``[B, C, h, w]`` (neck feature at stride 4 of the padded input)."""
        self._require_image()
        return self._features[:, :, 0]

    @property
    def low_res_hw(self) -> Tuple[int, int]:
        """Size ``(h, w)`` of ``low_res_logits`` and of ``mask_input`` (the mask grid over the
        padded input)."""
        self._require_image()
        return tuple(self._features.shape[-2:])

    def _require_image(self) -> None:
        if self._features is None:
            raise RuntimeError('FastSAM2ImagePredictor: call set_image(...) (or set_image_batch) '
                               'before predicting')

    # ------------------------------------------------------------------ prediction
    def predict(self, point_coords: Optional[ArrayLike] = None,
                point_labels: Optional[ArrayLike] = None, box: Optional[ArrayLike] = None,
                mask_input: Optional[ArrayLike] = None,
                text: Optional[Union[str, Sequence[str]]] = None, multimask_output: bool = True,
                return_logits: bool = False, normalize_coords: bool = True
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks of the image given by ``set_image``, SAM2's ``predict``.

        Args:
            point_coords: ``[N, 2]`` (x, y) clicks of one object, or ``[B, N, 2]`` for B objects;
                original-image pixels (``normalize_coords=False``: already in 0..1 of the image).
            point_labels: ``[N]`` / ``[B, N]``: 1 positive, 0 negative, -1 padding.
            box: ``[4]`` or ``[B, 4]`` xyxy in original-image pixels (0..1 likewise).
            mask_input: ``[1, h, w]`` or ``[B, 1, h, w]`` low-res logits of a previous
                ``predict`` (``low_res_hw``); its positive cells become the mask prompt.
            text: a text prompt per object (one string for B = 1).
            multimask_output: 3 candidate masks per object with their predicted IoU (ambiguous
                single clicks; pick ``np.argmax(scores)``), else 1 mask (the single-mask path).
            return_logits: masks as logits instead of booleans.

        Returns:
            ``masks [B, C, H, W]``, ``scores [B, C]``, ``low_res_logits [B, C, h, w]``, numpy, the
            leading B dimension dropped when B = 1 (as SAM2); C = 3 or 1.
        """
        self._require_image()
        if self._is_batch:
            raise RuntimeError('FastSAM2ImagePredictor.predict: several images were set with '
                               'set_image_batch; use predict_batch')
        prompts, types = self._prep_prompts(0, point_coords, point_labels, box, mask_input, text,
                                            normalize_coords)
        masks, scores, low = self._predict_images([prompts], multimask_output, return_logits,
                                                  types)[0]
        return _to_numpy(masks, scores, low)

    def predict_batch(self, point_coords_batch: Optional[Sequence] = None,
                      point_labels_batch: Optional[Sequence] = None,
                      box_batch: Optional[Sequence] = None,
                      mask_input_batch: Optional[Sequence] = None,
                      text_batch: Optional[Sequence] = None, multimask_output: bool = True,
                      return_logits: bool = False, normalize_coords: bool = True
                      ) -> Tuple[List[np.ndarray], List[np.ndarray], List[np.ndarray]]:
        """``predict`` for every image of ``set_image_batch`` (per image, its entry of each
        ``*_batch`` list, None for a kind it lacks), all objects of all images decoded in one
        forward. Returns per image lists of ``masks``, ``scores``, ``low_res_logits``."""
        self._require_image()
        n = len(self._samples)
        given = dict(point_coords_batch=point_coords_batch, point_labels_batch=point_labels_batch,
                     box_batch=box_batch, mask_input_batch=mask_input_batch, text_batch=text_batch)
        for name, value in given.items():
            if value is not None and len(value) != n:
                raise ValueError(f'predict_batch: {name} has {len(value)} entries for {n} images')
        prompts, types = [], set()
        for i in range(n):
            args = [None if v is None else v[i] for v in given.values()]
            p, t = self._prep_prompts(i, *args, normalize_coords=normalize_coords)
            prompts.append(p)
            types |= t
        results = self._predict_images(prompts, multimask_output, return_logits, types)
        out = [_to_numpy(*r) for r in results]
        return [o[0] for o in out], [o[1] for o in out], [o[2] for o in out]

    def predict_torch(self, point_coords: Optional[torch.Tensor] = None,
                      point_labels: Optional[torch.Tensor] = None,
                      boxes: Optional[torch.Tensor] = None,
                      mask_input: Optional[torch.Tensor] = None,
                      texts: Optional[Sequence[str]] = None, multimask_output: bool = True,
                      return_logits: bool = False, img_idx: int = 0
                      ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The fast path on tensors, no validation and no host round trip of the prompts:
        coordinates already in the network-input frame (``transform_coords``), ``point_coords
        [B, N, 2]``, ``point_labels [B, N]``, ``boxes [B, 4]``, ``mask_input [B, 1, h, w]``
        logits, ``texts`` B strings. Returns device tensors ``masks [B, C, H, W]``, ``scores
        [B, C]``, ``low_res_logits [B, C, h, w]``."""
        self._require_image()
        prompts = [None] * len(self._samples)
        prompts[img_idx], types = self._instances(img_idx, point_coords, point_labels, boxes,
                                                  mask_input, texts)
        return self._predict_images(prompts, multimask_output, return_logits, types)[img_idx]

    def transform_coords(self, coords: ArrayLike, normalize: bool = False,
                         img_idx: int = 0) -> torch.Tensor:
        """Original-image coordinates ``[..., 2]`` (x, y) -> network-input pixels (``normalize``:
        the coordinates are in 0..1 of the image instead)."""
        self._require_image()
        h, w = self._samples[img_idx].ori_shape[:2]
        sx, sy = self._samples[img_idx].scale_factor
        c = torch.as_tensor(check_finite(coords, 'coords'), device=self.device)
        if normalize:
            c = c * c.new_tensor([w, h])
        return c * c.new_tensor([sx, sy])

    def mask_to_low_res(self, mask: ArrayLike, img_idx: int = 0) -> np.ndarray:
        """A binary mask ``[H, W]`` at the original image size -> ``mask_input`` logits
        ``[1, h, w]`` (the mask grid over the padded input: cells at least half covered are
        inside), for re-prompting with a mask from elsewhere."""
        self._require_image()
        sample = self._samples[img_idx]
        m = check_mask(mask, 'mask_to_low_res: mask', tuple(sample.ori_shape[:2]))
        m = torch.as_tensor(m, device=self.device).float()
        full = _image_masks_to_input(m[None], sample, self._input_hw)
        low = F.interpolate(full[:, None], size=self.low_res_hw, mode='area')[:, 0]
        return (torch.where(low >= 0.5, MASK_LOGIT, -MASK_LOGIT)).cpu().numpy()

    def predict_instances(self, prompts: InstanceData, img_idx: int = 0,
                          multimask_output: bool = False) -> DetDataSample:
        """Prompts built by ``seg.structures.build_prompts`` in ORIGINAL-image pixels (mask
        prompts ``[N, H, W]`` at the image size) -> a ``DetDataSample`` as ``RapSAM.predict``
        fills it: ``pred_instances`` (``mask_logits``, ``masks``, ``labels``, ``scores``,
        ``instances_id`` 1..N, at the original size; the best candidate with
        ``multimask_output``), the ``prompts`` in network-input pixels and the image metainfo
        (for ``seg.apis.draw_prompt_result``)."""
        self._require_image()
        sample = self._samples[img_idx]
        prompts = _checked_instances(prompts, tuple(sample.ori_shape[:2]))
        sx, sy = sample.scale_factor
        scaled = scale_prompts(prompts, sx, sy).to(self.device)
        if 'masks' in scaled:
            check_mask(scaled.masks, 'mask prompts', tuple(sample.ori_shape[:2]), ndim=3)
            scaled.masks = _image_masks_to_input(scaled.masks.float(), sample, self._input_hw)
        batch = [None] * len(self._samples)
        batch[img_idx] = scaled
        with torch.no_grad(), autocast(self.device, self.precision):
            final, _ = self.model.decode_prompts(self._select(batch), self._only(batch),
                                                 self._input_hw, multimask_output,
                                                 feat_cache=self._cache_for(batch),
                                                 single_mask=not multimask_output)
        with torch.no_grad():
            low, scores = self._outputs(final, multimask_output)
            best = scores.argmax(1)
            rows = torch.arange(len(low), device=low.device)
            logits = to_output_res(low[rows, best], sample, self._input_hw, rescale=True)
        result = DetDataSample(metainfo=sample.metainfo)
        result.prompts = scaled
        result.pred_instances = InstanceData(
            mask_logits=logits, masks=logits > self.mask_threshold,
            labels=final.prm_cls[:, :-1].argmax(-1), scores=scores[rows, best],
            instances_id=torch.arange(1, len(low) + 1, device=low.device))
        return result

    # ------------------------------------------------------------------ internals
    def _select(self, prompts: List[Optional[InstanceData]]) -> torch.Tensor:
        """The embeddings of the images that have prompts."""
        idx = [i for i, p in enumerate(prompts) if p is not None]
        if len(idx) == len(prompts):
            return self._features
        return self._features[idx]

    def _cache_for(self, prompts: List[Optional[InstanceData]]) -> Optional[Dict[str, torch.Tensor]]:
        """The projections cache when every image is decoded (the embedding batch as cached);
        a subset of a batch is another layout: no cache."""
        return self._feat_cache if all(p is not None for p in prompts) else None

    @staticmethod
    def _only(prompts: List[Optional[InstanceData]]) -> List[InstanceData]:
        return [p for p in prompts if p is not None]

    def _outputs(self, final, multimask: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """Low-res logits ``[N, C, h, w]`` and scores ``[N, C]`` of a decode, float32 (an
        autocast decode's may be fp16 / bf16)."""
        if multimask and final.prm_multi_mask is not None:
            return final.prm_multi_mask.float(), final.prm_multi_iou.float()
        if multimask and not self._warned_single:
            warnings.warn('FastSAM2ImagePredictor: the model has no multimask_decoder; '
                          'multimask_output=True returns the single mask')
            self._warned_single = True
        scores = (final.prm_iou if final.prm_iou is not None
                  else final.prm_cls[:, :-1].softmax(-1).max(-1).values)
        return final.prm_mask[:, :1].float(), scores[:, None].float()

    def _predict_images(self, prompts: List[Optional[InstanceData]], multimask: bool,
                        return_logits: bool, types: Set[str]
                        ) -> List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One decode of every image's prompts -> per prompted image (masks, scores, low-res)."""
        with torch.no_grad(), autocast(self.device, self.precision):
            # with candidates asked for, the single mask is never returned: its refiners are
            # skipped; the candidates' scores need no class of the prompts either
            final, _ = self.model.decode_prompts(self._select(prompts), self._only(prompts),
                                                 self._input_hw, multimask, types,
                                                 feat_cache=self._cache_for(prompts),
                                                 single_mask=not multimask, classes=not multimask)
        with torch.no_grad():
            low, scores = self._outputs(final, multimask)
            counts = [len(p) for p in prompts if p is not None]
            results = []
            images = [i for i, p in enumerate(prompts) if p is not None]
            for i, lo, sc in zip(images, low.split(counts), scores.split(counts)):
                n, c = lo.shape[:2]
                up = upsample_masks(lo.flatten(0, 1), self._samples[i], self._input_hw,
                                    None if return_logits else self.mask_threshold)
                results.append((up.view(n, c, *up.shape[-2:]), sc, lo))
        if len(images) == len(prompts):
            return results
        out = [None] * len(prompts)
        for i, r in zip(images, results):
            out[i] = r
        return out

    def _prep_prompts(self, img_idx: int, point_coords, point_labels, box, mask_input, text,
                      normalize_coords: bool) -> Tuple[InstanceData, Set[str]]:
        """Validate SAM2-style prompts (numpy / lists / tensors) of one image and move them to
        the network-input frame."""
        h, w = self._samples[img_idx].ori_shape[:2]
        normalized = not normalize_coords
        where = f' of image {img_idx}' if len(self._samples) > 1 else ''
        sizes = {}
        pts = labels = boxes = masks = None
        if point_coords is not None:
            pts, labels = check_points(point_coords, point_labels, (h, w), 'point_coords' + where,
                                       normalized)
            sizes['point_coords'] = len(pts)
        elif point_labels is not None:
            raise ValueError('point_labels given without point_coords')
        if box is not None:
            boxes = check_boxes(box, (h, w), 'box' + where, normalized)
            sizes['box'] = len(boxes)
        if mask_input is not None:
            masks = check_finite(mask_input, 'mask_input' + where)
            masks = masks[None] if masks.ndim == 3 else masks
            grid = self.low_res_hw
            if masks.ndim != 4 or masks.shape[1] != 1 or tuple(masks.shape[-2:]) != grid:
                raise ValueError(f'mask_input must be low-res logits [1, {grid[0]}, {grid[1]}] or '
                                 f'[B, 1, {grid[0]}, {grid[1]}] (the low_res_logits of a previous '
                                 f'predict on this image), got {tuple(np.shape(mask_input))}')
            sizes['mask_input'] = len(masks)
        texts = None
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            if not all(isinstance(t, str) for t in texts):
                raise TypeError(f'text{where} must be a str or a list of str, got {text!r:.200}')
            sizes['text'] = len(texts)
        if not sizes:
            raise ValueError('predict needs at least one of point_coords, box, mask_input, text')
        if len(set(sizes.values())) != 1:
            raise ValueError(f'the prompts disagree on the number of objects B: {sizes}')
        to_input = lambda a: self.transform_coords(a, not normalize_coords, img_idx)  # noqa: E731
        prompts, types = self._instances(
            img_idx, None if pts is None else to_input(pts), labels,
            None if boxes is None else to_input(boxes.reshape(-1, 2, 2)).reshape(-1, 4),
            masks, texts)
        if pts is not None and not (labels >= 0).any():
            types.discard('point')
        return prompts, types

    def _instances(self, img_idx: int, points, labels, boxes, masks, texts
                   ) -> Tuple[InstanceData, Set[str]]:
        """The model's prompt fields (network-input frame) from per-object tensors / arrays, and
        the prompt types present, read from which kinds are given (no device sync)."""
        device = self.device
        n = next(len(x) for x in (points, boxes, masks, texts) if x is not None)
        out, types = InstanceData(), set()
        if points is not None:
            out.points = torch.as_tensor(points, dtype=torch.float32, device=device)
            out.point_labels = torch.as_tensor(labels, dtype=torch.long, device=device)
            types.add('point')
        else:
            out.points = torch.zeros(n, 0, 2, device=device)
            out.point_labels = torch.zeros(n, 0, dtype=torch.long, device=device)
        if boxes is not None:
            out.bboxes = torch.as_tensor(boxes, dtype=torch.float32, device=device)
            out.box_valid = torch.ones(n, dtype=torch.bool, device=device)
            types.add('box')
        else:
            out.bboxes = torch.zeros(n, 4, device=device)
            out.box_valid = torch.zeros(n, dtype=torch.bool, device=device)
        if masks is not None:
            # low-res logits -> the binary mask prompt on the mask grid (the encoder's resolution);
            # the padding of the input is never part of it
            inside = image_region(self._samples[img_idx], self._input_hw, self.low_res_hw, device)
            out.masks = ((torch.as_tensor(masks, device=device)[:, 0] > 0) & inside).float()
            types.add('mask')
        if texts is not None:
            out.texts = list(texts)
            if any(texts):
                types.add('text')
        return out, types


def _checked_instances(prompts: InstanceData, hw: Tuple[int, int]) -> InstanceData:
    """``build_prompts`` fields validated against the image (``seg.utils.validation``): finite
    points and boxes, clipped just outside the image, rejected farther out."""
    if not isinstance(prompts, InstanceData):
        raise TypeError(f'prompts must be an InstanceData (seg.structures.build_prompts), got '
                        f'{type(prompts).__name__}')
    out = prompts.clone()
    if 'points' in out and out.points.numel():
        pts, _ = check_points(out.points, out.point_labels, hw, 'prompts.points',
                              labels_name='prompts.point_labels')
        out.points = torch.as_tensor(pts, device=out.points.device)
    if 'bboxes' in out and len(out):
        valid = out.box_valid.bool() if 'box_valid' in out else torch.ones(len(out), dtype=torch.bool)
        boxes = out.bboxes.clone()
        if valid.any():
            boxes[valid] = torch.as_tensor(check_boxes(out.bboxes[valid], hw, 'prompts.bboxes'),
                                           device=boxes.device)
        out.bboxes = boxes
    return out


def build_model(config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
                image_size: Optional[int] = DEFAULT_IMAGE_SIZE,
                cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """The config's model with a LOCAL checkpoint (None: random init and a loud warning) and the
    preprocessor's processing size ``image_size`` (longer side; None: as given), in eval mode."""
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file not found: {config}')
        config = Config.fromfile(config)
    if cfg_options:
        config.merge_from_dict(cfg_options)
    model_cfg = config.model
    # the predictor's size is the one size: a config's separate test size does not apply
    model_cfg.data_preprocessor.update(resize_longest_side=image_size, test_resize_longest_side=None)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {checkpoint}')
    model = MODELS.build(model_cfg)
    if checkpoint is None:
        warnings.warn('FastSAM2: no checkpoint given, the model has RANDOM weights (its masks '
                      'are meaningless); pass checkpoint=PATH of a trained model')
    else:
        load_checkpoint(model, checkpoint, map_location='cpu')
    # the class-name text embeddings now (from the disk cache after the first time), not on the
    # first call; a checkpoint carrying them keeps them
    model._ensure_class_embeds()
    return model.to(device).eval()


def upsample_masks(low: torch.Tensor, sample: DetDataSample, input_hw: Tuple[int, int],
                   threshold: Optional[float] = None) -> torch.Tensor:
    """Low-res mask logits ``[N, h, w]`` -> the original image size (``sample.ori_shape``): float
    logits, or with ``threshold`` bool masks, made without the float image
    (``mask_geometry.to_output_masks``: one byte per output pixel, interpolation only along the
    boundaries), so binary output costs and holds little whatever N and the image size."""
    if threshold is None:
        return to_output_res(low, sample, input_hw, rescale=True)
    return to_output_masks(low, sample, input_hw, rescale=True, threshold=threshold)


def _image_masks_to_input(masks: torch.Tensor, sample: DetDataSample,
                          input_hw: Tuple[int, int]) -> torch.Tensor:
    """Masks ``[N, H, W]`` at the original size -> the padded network input ``[N, H', W']``."""
    h, w = sample.img_shape[:2]
    m = F.interpolate(masks[:, None].float(), size=(h, w), mode='bilinear', align_corners=False)
    return F.pad(m[:, 0], (0, input_hw[1] - w, 0, input_hw[0] - h))


def _to_numpy(masks: torch.Tensor, scores: torch.Tensor, low: torch.Tensor
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SAM2's output convention: numpy, the object dimension dropped when there is one object."""
    out = []
    for t in (masks, scores, low):
        t = t.float() if t.dtype != torch.bool else t
        out.append(t.squeeze(0).cpu().numpy() if t.shape[0] == 1 else t.cpu().numpy())
    return tuple(out)
