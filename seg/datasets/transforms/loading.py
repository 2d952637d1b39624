"""Annotation loading transforms that need no extra dependency."""
import warnings

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms import LoadAnnotations
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.fileio import get
from pycocotools import mask as mask_utils

from seg.registry import TRANSFORMS
from seg.utils.masks import mask_to_box, read_davis_png, rgb2id

VOID = 255


@TRANSFORMS.register_module()
class LoadCocoPanopticAnnotations(LoadAnnotations):
    """mmdet's ``LoadPanopticAnnotations`` without the ``panopticapi`` dependency.

    Reads the data info produced by mmdet's ``CocoPanopticDataset`` and adds

    - ``gt_bboxes`` / ``gt_bboxes_labels`` / ``gt_ignore_flags``: the thing instances,
    - ``gt_masks`` (``BitmapMasks``): one mask per thing segment, in ``segments_info`` order,
      and ``gt_instances_ids`` (int64): their segment ids (mmdet's ``RandomCrop`` drops ids with
      their boxes; ``LoadStoredPrompts`` matches offline prompts to targets by them),
    - ``gt_seg_map`` (uint8 [H, W]): contiguous labels, things ``0..T-1``, stuff ``T..``, 255 void.

    Args:
        on_mismatch: what to do when the PNG and the json disagree (a PNG segment id the json does
            not list, or a json segment absent from the PNG): ``'error'`` raises a ``ValueError``
            naming the PNG; ``'warn'`` warns and treats unknown pixels as void.
        Other args are those of mmdet's ``LoadAnnotations``.
    """

    def __init__(self,
                 with_bbox: bool = True,
                 with_label: bool = True,
                 with_mask: bool = True,
                 with_seg: bool = True,
                 on_mismatch: str = 'error',
                 box_type: str = 'hbox',
                 imdecode_backend: str = 'cv2',
                 backend_args: dict = None) -> None:
        if on_mismatch not in ('error', 'warn'):
            raise ValueError(f"on_mismatch must be 'error' or 'warn', got {on_mismatch!r}")
        self.on_mismatch = on_mismatch
        super().__init__(with_bbox=with_bbox, with_label=with_label, with_mask=with_mask,
                         with_seg=with_seg, with_keypoints=False, box_type=box_type,
                         imdecode_backend=imdecode_backend, backend_args=backend_args)

    def _read_panoptic_ids(self, path: str) -> np.ndarray:
        try:
            png_bytes = get(path, backend_args=self.backend_args)
        except FileNotFoundError as e:
            raise FileNotFoundError(f'panoptic PNG not found: {path}') from e
        png = mmcv.imfrombytes(png_bytes, flag='color', channel_order='rgb', backend=self.imdecode_backend)
        if png is None:
            raise ValueError(f'panoptic PNG could not be decoded: {path}')
        return rgb2id(png)

    def _check_segments(self, pan_ids: np.ndarray, results: dict) -> None:
        listed = {s['id'] for s in results['segments_info']}
        present = set(np.unique(pan_ids).tolist()) - {0}  # id 0 is unlabeled
        unknown, missing = sorted(present - listed), sorted(listed - present)
        if not (unknown or missing):
            return
        msg = (f"panoptic PNG {results['seg_map_path']} does not match its json: "
               f'ids in the PNG but not in segments_info: {unknown[:10]}; '
               f'segments_info ids absent from the PNG: {missing[:10]}')
        if self.on_mismatch == 'error':
            raise ValueError(msg)
        warnings.warn(msg + ' (unknown pixels are treated as void)')

    def _load_masks_and_semantic_segs(self, results: dict) -> None:
        # seg_map_path is None when running inference on a dataset without ground truth
        if results.get('seg_map_path') is None:
            return
        pan_ids = self._read_panoptic_ids(results['seg_map_path'])
        h, w = results['ori_shape']
        if pan_ids.shape != (h, w):
            raise ValueError(f"panoptic PNG {results['seg_map_path']} is {pan_ids.shape[1]}x"
                             f'{pan_ids.shape[0]} but the image is {w}x{h}')
        self._check_segments(pan_ids, results)
        seg_map = np.full((h, w), VOID, dtype=np.uint8)
        thing_masks = []
        for segment in results['segments_info']:
            mask = pan_ids == segment['id']
            seg_map[mask] = segment['category']
            if segment.get('is_thing'):
                thing_masks.append(mask.astype(np.uint8))
        if self.with_mask:
            results['gt_masks'] = BitmapMasks(thing_masks, h, w)
            results['gt_instances_ids'] = np.array(
                [s['id'] for s in results['segments_info'] if s.get('is_thing')], dtype=np.int64)
        if self.with_seg:
            results['gt_seg_map'] = seg_map

    def transform(self, results: dict) -> dict:
        if self.with_bbox:
            self._load_bboxes(results)
        if self.with_label:
            self._load_labels(results)
        if self.with_mask or self.with_seg:
            self._load_masks_and_semantic_segs(results)
        return results

    def __repr__(self) -> str:
        return f'{super().__repr__()[:-1]}, on_mismatch={self.on_mismatch!r})'


def read_davis_objects(path: str, mask_format: str) -> tuple:
    """Objects of a DAVIS annotation PNG: ``(object ids, bool masks [K, H, W], void map uint8)``.

    ``mask_format='binary'`` (DAVIS 2016): values 0/255, 255 is object 1, no void.
    ``mask_format='palette'`` (DAVIS 2017): palette indices, 1..254 objects, 255 void (the void
    map is 255 there and 0 elsewhere; void is never an object).
    """
    png = read_davis_png(path)
    values = np.unique(png)
    if mask_format == 'binary':
        if not set(values.tolist()) <= {0, 255}:
            raise ValueError(f'{path}: a binary (DAVIS 2016) mask must hold only 0 and 255, got '
                             f'{values.tolist()}')
        ids = [1] if 255 in values else []
        masks = (png == 255)[None] if ids else np.zeros((0, ) + png.shape, bool)
        return ids, masks, np.zeros(png.shape, np.uint8)
    if mask_format == 'palette':
        ids = [int(v) for v in values if 0 < v < VOID]
        masks = np.stack([png == i for i in ids]) if ids else np.zeros((0, ) + png.shape, bool)
        return ids, masks, np.where(png == VOID, VOID, 0).astype(np.uint8)
    raise ValueError(f"{path}: mask_format must be 'binary' or 'palette', got {mask_format!r}")


@TRANSFORMS.register_module()
class LoadVideoFrameAnnotations(BaseTransform):
    """Load one frame's objects of the unified video format (run it under ``TransformBroadcaster``).

    Reads either the frame's ``instances`` (COCO RLE per object, YouTube-VIS) or its id PNG at
    ``seg_map_path`` (DAVIS: ``mask_format='binary'`` 0/255 -> object 1; ``'palette'`` ids
    1..254 are objects, 255 is void). A frame with neither (DAVIS test-dev: only the first
    frame is annotated) has no objects, at the loaded image's size. Objects with an empty mask
    are dropped.

    Added keys:

    - ``gt_masks`` (``BitmapMasks`` [K, H, W]), ``gt_bboxes`` (``HorizontalBoxes``, tight boxes of
      the masks), ``gt_bboxes_labels`` (int64), ``gt_instances_ids`` (int64, stable over the
      video), ``gt_ignore_flags`` (bool);
    - ``gt_seg_map`` (uint8 [H, W]): the void map, 255 where the pixel must be ignored (DAVIS
      void), 0 elsewhere. Geometric transforms pad it with 255 and ``PackSegTrackInputs`` packs it
      as ``ignore_mask``. Void is never an object.
    """

    def transform(self, results: dict) -> dict:
        if results.get('seg_map_path') is not None:
            masks, ids, labels, ignore, void = self._from_png(results)
        elif 'instances' in results:
            masks, ids, labels, ignore, void = self._from_instances(results)
        else:  # an unannotated frame (DAVIS test-dev: only the first frame has its PNG)
            masks, ids, labels, ignore, void = self._unannotated(results)
        h, w = void.shape
        shape = results.get('ori_shape') or results.get('img_shape')
        if shape is not None and tuple(shape[:2]) != (h, w):
            where = results.get('seg_map_path') or results.get('img_path')
            raise ValueError(f'annotation of {where} is {w}x{h} but the image is '
                             f'{shape[1]}x{shape[0]}')
        keep = masks.reshape(len(masks), -1).any(1) if len(masks) else np.zeros(0, bool)
        masks = masks[keep]
        results['gt_masks'] = BitmapMasks(masks, h, w)
        results['gt_bboxes'] = HorizontalBoxes(
            torch.from_numpy(np.array([mask_to_box(m) for m in masks], np.float32).reshape(-1, 4)))
        results['gt_bboxes_labels'] = np.asarray(labels, np.int64)[keep]
        results['gt_instances_ids'] = np.asarray(ids, np.int64)[keep]
        results['gt_ignore_flags'] = np.asarray(ignore, bool)[keep]
        results['gt_seg_map'] = void
        return results

    @staticmethod
    def _from_png(results: dict) -> tuple:
        ids, masks, void = read_davis_objects(results['seg_map_path'],
                                              results.get('mask_format', 'palette'))
        return masks.astype(np.uint8), ids, [0] * len(ids), [False] * len(ids), void

    @staticmethod
    def _unannotated(results: dict) -> tuple:
        shape = results.get('ori_shape') or results.get('img_shape')
        if shape is None:
            raise ValueError(f"{results.get('img_path')}: a frame without annotation takes its "
                             'size from the image: run LoadImageFromFile before '
                             'LoadVideoFrameAnnotations')
        h, w = shape[:2]
        return np.zeros((0, h, w), np.uint8), [], [], [], np.zeros((h, w), np.uint8)

    @staticmethod
    def _from_instances(results: dict) -> tuple:
        instances = results['instances']
        if 'height' not in results or 'width' not in results:
            raise ValueError(f"{results.get('img_path')}: a frame with 'instances' needs its "
                             "'height' and 'width' (the dataset's data info)")
        h, w = results['height'], results['width']
        masks = np.zeros((len(instances), h, w), np.uint8)
        for k, inst in enumerate(instances):
            rle = inst['mask']
            if isinstance(rle.get('counts'), list):  # uncompressed RLE, as YouTube-VIS 2019 ships
                rle = mask_utils.frPyObjects(rle, *rle['size'])
            m = mask_utils.decode(rle)
            if m.shape != (h, w):
                raise ValueError(f"{results.get('img_path')}: mask of instance "
                                 f"{inst['instance_id']} is {m.shape[1]}x{m.shape[0]}, the frame "
                                 f'is {w}x{h}')
            masks[k] = m
        return (masks, [i['instance_id'] for i in instances], [i['bbox_label'] for i in instances],
                [bool(i.get('ignore_flag', 0)) for i in instances], np.zeros((h, w), np.uint8))
