"""COCO panoptic quality (PQ / SQ / RQ), computed as panopticapi's ``pq_compute`` does.

panopticapi cannot be installed here (and mmdet's panoptic metric needs it), so this module is an
independent implementation of the same protocol:

- Segment ids come from the RGB PNGs (``id = R + 256·G + 256²·B``); 0 is VOID. GT areas are the
  json ``area`` fields, prediction areas are counted in the PNG.
- A GT and a predicted segment of the same category match when IoU > 0.5 (strict), where the
  prediction's pixels on GT VOID are removed from the union. Crowd GT segments never match.
- Unmatched GT segments that are not crowd are false negatives. An unmatched prediction is a
  false positive unless more than half of it lies on GT VOID plus the crowd region of its own
  category (the last crowd segment of that category in the json order).
- Per category PQ = ΣIoU / (TP + FP/2 + FN/2), SQ = ΣIoU / TP, RQ = TP / (TP + FP/2 + FN/2);
  All / Things / Stuff average over the categories with TP + FP + FN > 0 (``n`` of them).

``OFFSET`` pairs a GT id and a prediction id into one integer so one ``np.unique`` gives every
intersection; ids are 24-bit so ``256³`` keeps the pairs distinct.
"""
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional, Tuple, Union

import numpy as np
from mmengine.utils import ProgressBar
from PIL import Image

from seg.utils.atomic_io import atomic_save_png
from seg.utils.masks import PANOPTIC_ID_LIMIT, id2rgb, rgb2id
from seg.utils.validation import (
    check_dir,
    check_int,
    load_json_file,
    read_image_file,
    require_keys,
    require_list,
)

VOID = 0
OFFSET = PANOPTIC_ID_LIMIT
PathLike = Union[str, Path]
Categories = Mapping[int, Mapping]  # category id -> {'id', 'name', 'isthing', ...}


def read_panoptic_png(path: PathLike) -> np.ndarray:
    """Read a COCO panoptic RGB PNG as [H, W] int64 segment ids (a missing, corrupt or truncated
    file, or one that is not 3-channel, is an error naming it)."""
    rgb = read_image_file(path, 'panoptic PNG', max_pixels=None, mode=None)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'{path}: COCO panoptic PNGs are RGB [H, W, 3] (id = R + 256 G + 256^2 B), '
                         f'got an array of shape {rgb.shape}')
    return rgb2id(rgb)


def write_panoptic_png(ids: np.ndarray, path: PathLike) -> None:
    """Write [H, W] segment ids as a COCO panoptic RGB PNG, atomically."""
    atomic_save_png(Image.fromarray(id2rgb(ids)), path)


@dataclass
class PQCategoryStat:
    """Running sums of one category."""
    iou: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0


def _index_segments(segments: Iterable[Mapping], keys: Tuple[str, ...], what: str,
                    image_id) -> Dict[int, Mapping]:
    out = {}
    for seg in segments:
        if not isinstance(seg, Mapping):
            raise ValueError(f'image {image_id}: {what} segment {seg!r:.100} is not a JSON object')
        missing = [k for k in keys if k not in seg]
        if missing:
            raise KeyError(f'image {image_id}: {what} segment {dict(seg)} lacks {missing}')
        seg_id = check_int(seg['id'], f'image {image_id}: {what} segment "id"', 0,
                           PANOPTIC_ID_LIMIT - 1)
        if 'iscrowd' in keys and seg['iscrowd'] not in (0, 1):
            raise ValueError(f'image {image_id}: {what} segment {seg_id} has "iscrowd" '
                             f'{seg["iscrowd"]!r}, expected 0 or 1')
        if 'area' in keys and (isinstance(seg['area'], bool)
                               or not isinstance(seg['area'], (int, float)) or seg['area'] < 0):
            raise ValueError(f'image {image_id}: {what} segment {seg_id} has "area" '
                             f'{seg["area"]!r}, expected a number >= 0')
        if seg_id == VOID or seg_id in out:
            raise ValueError(f'image {image_id}: {what} segment id {seg_id} is '
                             f'{"VOID (0)" if seg_id == VOID else "listed twice"}')
        out[seg_id] = seg
    return out


class PQStat:
    """Per-category TP / FP / FN / ΣIoU, accumulated image by image and summable with ``+=``."""

    def __init__(self) -> None:
        self.per_category: Dict[int, PQCategoryStat] = defaultdict(PQCategoryStat)

    def __iadd__(self, other: 'PQStat') -> 'PQStat':
        for cat, s in other.per_category.items():
            mine = self.per_category[cat]
            mine.iou += s.iou
            mine.tp += s.tp
            mine.fp += s.fp
            mine.fn += s.fn
        return self

    def add_image(self, gt_segments: Iterable[Mapping], pred_segments: Iterable[Mapping],
                  gt_ids: np.ndarray, pred_ids: np.ndarray, categories: Categories,
                  image_id=None) -> None:
        """Match one image's segments and add its counts.

        ``gt_segments`` need ``id``, ``category_id``, ``iscrowd``, ``area``; ``pred_segments``
        need ``id`` and ``category_id``. ``*_ids`` are the [H, W] id maps of the PNGs.
        """
        gt_segms = _index_segments(gt_segments, ('id', 'category_id', 'iscrowd', 'area'), 'GT',
                                   image_id)
        pred_segms = _index_segments(pred_segments, ('id', 'category_id'), 'prediction', image_id)
        if gt_ids.shape != pred_ids.shape:
            raise ValueError(f'image {image_id}: GT PNG has shape {gt_ids.shape}, the prediction '
                             f'{pred_ids.shape}')
        pred_area = self._pred_areas(pred_segms, pred_ids, categories, image_id)
        self._check_gt(gt_segms, gt_ids, categories, image_id)

        pairs = gt_ids.astype(np.uint64) * np.uint64(OFFSET) + pred_ids.astype(np.uint64)
        labels, counts = np.unique(pairs, return_counts=True)
        overlap = {(int(lab) // OFFSET, int(lab) % OFFSET): int(cnt)
                   for lab, cnt in zip(labels, counts)}

        gt_matched, pred_matched = set(), set()
        for (gt_id, pred_id), inter in overlap.items():
            gt_seg, pred_seg = gt_segms.get(gt_id), pred_segms.get(pred_id)
            if gt_seg is None or pred_seg is None or gt_seg['iscrowd'] == 1:
                continue
            if gt_seg['category_id'] != pred_seg['category_id']:
                continue
            union = (pred_area[pred_id] + gt_seg['area'] - inter
                     - overlap.get((VOID, pred_id), 0))
            iou = inter / union
            if iou > 0.5:
                stat = self.per_category[gt_seg['category_id']]
                stat.tp += 1
                stat.iou += iou
                gt_matched.add(gt_id)
                pred_matched.add(pred_id)

        crowd_of_category = {}
        for gt_id, gt_seg in gt_segms.items():
            if gt_id in gt_matched:
                continue
            if gt_seg['iscrowd'] == 1:
                crowd_of_category[gt_seg['category_id']] = gt_id
                continue
            self.per_category[gt_seg['category_id']].fn += 1

        for pred_id, pred_seg in pred_segms.items():
            if pred_id in pred_matched:
                continue
            ignored = overlap.get((VOID, pred_id), 0)
            crowd_id = crowd_of_category.get(pred_seg['category_id'])
            if crowd_id is not None:
                ignored += overlap.get((crowd_id, pred_id), 0)
            if ignored / pred_area[pred_id] > 0.5:
                continue
            self.per_category[pred_seg['category_id']].fp += 1

    @staticmethod
    def _pred_areas(pred_segms: Mapping[int, Mapping], pred_ids: np.ndarray,
                    categories: Categories, image_id) -> Dict[int, int]:
        labels, counts = np.unique(pred_ids, return_counts=True)
        area = {}
        for label, count in zip(labels.tolist(), counts.tolist()):
            if label == VOID:
                continue
            if label not in pred_segms:
                raise KeyError(f'image {image_id}: segment id {label} is in the prediction PNG but '
                               f'not in its segments_info')
            if pred_segms[label]['category_id'] not in categories:
                raise KeyError(f'image {image_id}: prediction segment {label} has unknown '
                               f'category_id {pred_segms[label]["category_id"]}')
            area[label] = count
        absent = sorted(set(pred_segms) - set(area))
        if absent:
            raise KeyError(f'image {image_id}: segment ids {absent} are in segments_info but '
                           f'not in the prediction PNG')
        return area

    @staticmethod
    def _check_gt(gt_segms: Mapping[int, Mapping], gt_ids: np.ndarray, categories: Categories,
                  image_id) -> None:
        unknown = [s['category_id'] for s in gt_segms.values()
                   if s['category_id'] not in categories]
        if unknown:
            raise KeyError(f'image {image_id}: GT category ids {unknown} are not in the categories')
        in_png = set(np.unique(gt_ids).tolist()) - {VOID}
        unlisted = sorted(in_png - set(gt_segms))
        if unlisted:
            raise KeyError(f'image {image_id}: GT PNG has segment ids {unlisted} that the GT json '
                           f'does not list')

    def average(self, categories: Categories,
                isthing: Optional[bool] = None) -> Tuple[dict, Dict[int, dict]]:
        """``({'pq', 'sq', 'rq', 'n'}, per-category {'pq', 'sq', 'rq'})`` over the categories of
        one kind (``isthing`` None = all). ``n`` = 0 (no category present) gives zeros."""
        pq = sq = rq = 0.0
        n = 0
        per_class = {}
        for cat_id, info in categories.items():
            if isthing is not None and (info['isthing'] == 1) != isthing:
                continue
            s = self.per_category.get(cat_id, PQCategoryStat())
            if s.tp + s.fp + s.fn == 0:
                per_class[cat_id] = {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
                continue
            n += 1
            denominator = s.tp + 0.5 * s.fp + 0.5 * s.fn
            cls = {'pq': s.iou / denominator, 'sq': s.iou / s.tp if s.tp != 0 else 0.0,
                   'rq': s.tp / denominator}
            per_class[cat_id] = cls
            pq += cls['pq']
            sq += cls['sq']
            rq += cls['rq']
        if n == 0:
            return {'pq': 0.0, 'sq': 0.0, 'rq': 0.0, 'n': 0}, per_class
        return {'pq': float(pq / n), 'sq': float(sq / n), 'rq': float(rq / n), 'n': n}, per_class

    def summary(self, categories: Categories) -> dict:
        """``{'All', 'Things', 'Stuff'}`` summaries plus ``per_category`` (keyed by id string)."""
        out = {}
        for name, isthing in (('All', None), ('Things', True), ('Stuff', False)):
            out[name], per_class = self.average(categories, isthing)
            if isthing is None:
                out['per_category'] = {
                    str(cat_id): {'name': categories[cat_id].get('name', str(cat_id)),
                                  **{k: float(v) for k, v in res.items()},
                                  **asdict(self.per_category.get(cat_id, PQCategoryStat()))}
                    for cat_id, res in per_class.items()}
        return out


def load_categories(path: PathLike) -> Dict[int, dict]:
    """Categories from a json holding a list of categories or a dict with a ``categories`` key."""
    data = load_json_file(path, 'categories json')
    cats = data.get('categories') if isinstance(data, dict) else data
    if not cats or not isinstance(cats, list):
        raise KeyError(f'{path}: no categories (expected a list or a "categories" key)')
    return _categories_by_id(cats, str(path))


def _categories_by_id(cats: Iterable[Mapping], source: str) -> Dict[int, dict]:
    out = {}
    for cat in cats:
        if not isinstance(cat, Mapping):
            raise ValueError(f'{source}: category {cat!r:.100} is not a JSON object')
        if 'id' not in cat or 'isthing' not in cat:
            raise KeyError(f'{source}: category {dict(cat)} lacks "id" or "isthing"')
        cat_id = check_int(cat['id'], f'{source}: category "id"')
        if cat_id in out:
            raise ValueError(f'{source}: category id {cat_id} is listed twice')
        out[cat_id] = dict(cat)
    return out


def _annotations(data: dict, path: PathLike) -> Dict[object, dict]:
    """A panoptic json's annotations keyed by image id, each with its required keys."""
    require_keys(data, ('annotations', ), str(path))
    out = {}
    for i, ann in enumerate(require_list(data, 'annotations', str(path))):
        name = f'{path}: annotation {i}'
        require_keys(ann, ('image_id', 'file_name', 'segments_info'), name)
        require_list(ann, 'segments_info', name)
        if not isinstance(ann['image_id'], (int, str)) or isinstance(ann['image_id'], bool):
            raise ValueError(f'{name}: "image_id" must be an int or a string, got '
                             f'{ann["image_id"]!r}')
        if ann['image_id'] in out:
            raise ValueError(f'{path}: two annotations for image {ann["image_id"]}')
        out[ann['image_id']] = ann
    return out


def pq_compute(gt_json: PathLike, gt_folder: PathLike, pred_json: PathLike, pred_folder: PathLike,
               categories: Optional[PathLike] = None, progress: bool = True) -> dict:
    """PQ of a COCO-panoptic prediction (json + PNG folder) against the GT (json + PNG folder).

    ``categories`` (a categories json) overrides the GT json's ``categories``. Every GT image
    needs a prediction. Returns :meth:`PQStat.summary`.
    """
    gt = load_json_file(gt_json, 'GT json', expect=dict)
    pred = load_json_file(pred_json, 'prediction json', expect=dict)
    check_dir(gt_folder, 'GT PNG folder')
    check_dir(pred_folder, 'prediction PNG folder')
    if categories is not None:
        cats = load_categories(categories)
    elif gt.get('categories'):
        cats = _categories_by_id(require_list(gt, 'categories', str(gt_json)), str(gt_json))
    else:
        raise KeyError(f'{gt_json} has no "categories"; pass a categories json')
    gt_by_image = _annotations(gt, gt_json)
    if not gt_by_image:
        raise ValueError(f'{gt_json}: the annotation list is empty, nothing to evaluate')
    pred_by_image = _annotations(pred, pred_json)
    stat = PQStat()
    bar = ProgressBar(len(gt_by_image)) if progress else None
    for gt_ann in gt_by_image.values():
        image_id = gt_ann['image_id']
        if image_id not in pred_by_image:
            raise KeyError(f'{pred_json}: no prediction for image {image_id}')
        pred_ann = pred_by_image[image_id]
        stat.add_image(gt_ann['segments_info'], pred_ann['segments_info'],
                       read_panoptic_png(Path(gt_folder) / gt_ann['file_name']),
                       read_panoptic_png(Path(pred_folder) / pred_ann['file_name']), cats, image_id)
        if bar is not None:
            bar.update()
    return stat.summary(cats)
