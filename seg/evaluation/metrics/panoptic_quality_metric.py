"""Registered COCO panoptic metric (PQ / SQ / RQ) for mmdet-style panoptic predictions."""
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmdet.evaluation import INSTANCE_OFFSET
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from seg.registry import METRICS
from seg.utils.atomic_io import atomic_write_json

from ..panoptic_quality import PQStat, read_panoptic_png, write_panoptic_png
from .sample_fields import get_field, to_numpy


@METRICS.register_module()
class PanopticQualityMetric(BaseMetric):
    """COCO panoptic quality of ``pred_panoptic_seg`` (panopticapi's protocol, no panopticapi).

    Predictions are mmdet's: ``pred_panoptic_seg.sem_seg`` [1, H, W] with value
    ``label + instance_id * INSTANCE_OFFSET`` and label ``len(classes)`` = void. Each image's
    prediction is converted to COCO panoptic format (ids 1..K, VOID 0) and scored against:

    - with ``ann_file`` (the COCO panoptic GT json): its ``segments_info`` (json areas, crowd
      flags, category ids) and PNG (``seg_map_path`` of the sample, else ``seg_prefix`` + the
      json ``file_name``); labels map to category ids by class name. This is the exact protocol.
    - without: the sample's mmdet ``segments_info`` (``id``, ``category`` label, ``is_thing``; a
      thing segment with ``is_thing`` False is crowd) and ``seg_map_path``; category ids are the
      labels and areas are counted in the PNG.

    With ``outfile_prefix`` the predictions are also written for
    ``tools/evaluation/eval_coco_panoptic.py`` / the evaluation server:
    ``<prefix>.panoptic/<image>.png`` and ``<prefix>.panoptic.json`` (atomically).
    ``format_only`` only writes them (e.g. test-dev, whose GT is hidden). Metrics are fractions.

    ``void_unknown_classes``: a model whose vocabulary is larger than the GT json's categories
    (the staged FastSAM2 models add YouTube-VIS classes and DAVIS's ``'object'``; give the dataset
    that vocabulary as ``metainfo['classes']``) has its segments of the classes the json lacks
    scored as void; by default such a class is an error (a misspelt name must not pass silently).
    """

    default_prefix: Optional[str] = 'coco_panoptic'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 seg_prefix: Optional[str] = None,
                 outfile_prefix: Optional[str] = None,
                 format_only: bool = False,
                 void_unknown_classes: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if format_only and outfile_prefix is None:
            raise ValueError('PanopticQualityMetric: format_only needs outfile_prefix (where the '
                             'prediction json and PNGs go)')
        self.seg_prefix = seg_prefix
        self.outfile_prefix = outfile_prefix
        self.format_only = format_only
        self.void_unknown_classes = void_unknown_classes
        self._gt_json = None
        if ann_file is not None:
            self._gt_json = json.loads(Path(ann_file).read_text())
            if 'categories' not in self._gt_json:
                raise KeyError(f'{ann_file}: no "categories"')
            self._gt_anns = {a['image_id']: a for a in self._gt_json.get('annotations', [])}
            self.ann_file = ann_file

    def _label_mapping(self) -> Tuple[Dict[int, dict], Dict[int, int]]:
        """(categories by id, label -> category id) for the dataset's classes."""
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise KeyError('PanopticQualityMetric needs dataset_meta["classes"] (set by the runner '
                           'from the dataset)')
        classes = list(self.dataset_meta['classes'])
        if self._gt_json is None:
            things = set(self.dataset_meta.get('thing_classes', ()))
            cats = {i: {'id': i, 'name': c, 'isthing': int(c in things)}
                    for i, c in enumerate(classes)}
            return cats, {i: i for i in range(len(classes))}
        cats = {int(c['id']): c for c in self._gt_json['categories']}
        by_name = {c['name']: cat_id for cat_id, c in cats.items()}
        unknown = [c for c in classes if c not in by_name]
        if unknown and not self.void_unknown_classes:
            raise KeyError(f'{self.ann_file}: classes {unknown[:5]} are not category names '
                           '(void_unknown_classes=True scores them as void)')
        return cats, {i: by_name[c] for i, c in enumerate(classes) if c in by_name}

    def _prediction(self, sample: Any, label2cat: Dict[int, int]) -> Tuple[np.ndarray, List[dict]]:
        pan_seg = get_field(sample, 'pred_panoptic_seg')
        if pan_seg is None or get_field(pan_seg, 'sem_seg') is None:
            raise KeyError(f'{get_field(sample, "img_path", "?")}: no pred_panoptic_seg.sem_seg')
        pan = to_numpy(get_field(pan_seg, 'sem_seg')).astype(np.int64)
        if pan.ndim == 3 and pan.shape[0] == 1:
            pan = pan[0]
        if pan.ndim != 2 or pan.min(initial=0) < 0:
            raise ValueError(f'pred_panoptic_seg.sem_seg must be [1, H, W] non-negative, got '
                             f'{pan.shape}')
        num_classes = len(self.dataset_meta['classes'])
        values, inverse = np.unique(pan, return_inverse=True)
        labels = values % INSTANCE_OFFSET
        if (labels > num_classes).any():
            raise ValueError(f'panoptic labels {labels[labels > num_classes].tolist()} exceed the '
                             f'{num_classes} classes (label {num_classes} is void)')
        new_ids = np.zeros(len(values), dtype=np.int64)
        segments = []
        for k in np.flatnonzero(labels != num_classes):
            if int(labels[k]) not in label2cat:  # a class the GT lacks (void_unknown_classes)
                continue
            new_ids[k] = len(segments) + 1
            segments.append({'id': len(segments) + 1, 'category_id': label2cat[int(labels[k])]})
        return new_ids[inverse].reshape(pan.shape), segments

    def _ground_truth(self, sample: Any, file_name: str,
                      cats: Dict[int, dict]) -> Tuple[List[dict], np.ndarray]:
        img_id = get_field(sample, 'img_id')
        seg_map_path = get_field(sample, 'seg_map_path')
        if self._gt_json is not None:
            ann = self._gt_anns.get(img_id)
            if ann is None:
                raise KeyError(f'{self.ann_file}: no annotation for image {img_id}')
            if seg_map_path is None:
                if self.seg_prefix is None:
                    raise KeyError(f'image {img_id}: no seg_map_path in the sample and no '
                                   f'seg_prefix')
                seg_map_path = Path(self.seg_prefix) / ann['file_name']
            return ann['segments_info'], read_panoptic_png(seg_map_path)
        if seg_map_path is None or get_field(sample, 'segments_info') is None:
            raise KeyError(f'image {img_id} ({file_name}): without ann_file the sample needs '
                           f'seg_map_path and segments_info')
        gt_ids = read_panoptic_png(seg_map_path)
        seg_ids, areas = np.unique(gt_ids, return_counts=True)
        area_of = dict(zip(seg_ids.tolist(), areas.tolist()))
        segments = [{'id': s['id'], 'category_id': s['category'],
                     'iscrowd': int(cats[s['category']]['isthing'] == 1 and not s['is_thing']),
                     'area': area_of.get(s['id'], 0)} for s in get_field(sample, 'segments_info')]
        return segments, gt_ids

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        cats, label2cat = self._label_mapping()
        for sample in data_samples:
            img_id = get_field(sample, 'img_id')
            file_name = Path(get_field(sample, 'img_path')).with_suffix('.png').name
            ids, segments = self._prediction(sample, label2cat)
            entry: Dict[str, Any] = {}
            if self.outfile_prefix is not None:
                write_panoptic_png(ids, f'{self.outfile_prefix}.panoptic/{file_name}')
                entry['annotation'] = {'image_id': img_id, 'file_name': file_name,
                                       'segments_info': segments}
            if not self.format_only:
                gt_segments, gt_ids = self._ground_truth(sample, file_name, cats)
                entry['stat'] = PQStat()
                entry['stat'].add_image(gt_segments, segments, gt_ids, ids, cats, img_id)
            self.results.append(entry)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if self.outfile_prefix is not None:
            atomic_write_json({'annotations': [r['annotation'] for r in results]},
                              f'{self.outfile_prefix}.panoptic.json')
        if self.format_only:
            return {}
        cats, _ = self._label_mapping()
        stat = PQStat()
        for r in results:
            stat += r['stat']
        summary = stat.summary(cats)
        MMLogger.get_current_instance().info(
            'Panoptic quality (fractions)\n' + '\n'.join(
                f'{name:<7} PQ {s["pq"]:.4f}  SQ {s["sq"]:.4f}  RQ {s["rq"]:.4f}  n {s["n"]}'
                for name, s in ((k, summary[k]) for k in ('All', 'Things', 'Stuff'))))
        metrics = {}
        for name, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
            for key in ('pq', 'sq', 'rq'):
                metrics[f'{key.upper()}{suffix}'] = summary[name][key]
        return metrics
