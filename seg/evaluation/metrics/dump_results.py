"""Registered ``DumpSegResults``: the predictions of a test run in a pickle or JSON file
(``tools/test.py --out``), masks as COCO RLE, so that they can be re-scored or inspected offline."""
import pickle
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmdet.evaluation import INSTANCE_OFFSET
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from seg.registry import METRICS
from seg.utils.atomic_io import atomic_open, atomic_write_json
from seg.utils.rle import mask_to_rle

from .sample_fields import get_field, to_numpy

FORMATS = ('.pkl', '.pickle', '.json')


def _frame_record(sample: Any) -> Dict[str, Any]:
    """One image's predictions as plain Python values.

    ``instances``: per predicted mask its COCO RLE, score, label, ``bbox`` (xyxy) and, in video,
    ``instance_id``; ``panoptic``: per segment of the panoptic map its id (``label + id *
    INSTANCE_OFFSET``, mmdet's encoding), category label and COCO RLE."""
    record = {key: get_field(sample, key) for key in ('img_path', 'img_id', 'frame_id', 'ori_shape')
              if get_field(sample, key) is not None}
    if 'ori_shape' in record:
        record['ori_shape'] = [int(v) for v in record['ori_shape']]
    instances = get_field(sample, 'pred_instances')
    if instances is not None and get_field(instances, 'masks') is not None:
        masks = to_numpy(get_field(instances, 'masks')).astype(bool)
        columns = {name: to_numpy(get_field(instances, key)).tolist()
                   for name, key in (('score', 'scores'), ('label', 'labels'), ('bbox', 'bboxes'),
                                     ('instance_id', 'instances_id'))
                   if get_field(instances, key) is not None}
        for name, values in columns.items():
            if len(values) != len(masks):
                raise ValueError(f'{record.get("img_path", "?")}: {len(masks)} predicted masks but '
                                 f'{len(values)} pred_instances.{name} values')
        record['instances'] = [dict(mask=mask_to_rle(m), **{k: v[i] for k, v in columns.items()})
                               for i, m in enumerate(masks)]
    panoptic = get_field(sample, 'pred_panoptic_seg')
    if panoptic is not None:
        ids = to_numpy(get_field(panoptic, 'sem_seg'))
        ids = ids[0] if ids.ndim == 3 and len(ids) == 1 else ids  # PixelData keeps a channel axis
        if ids.ndim != 2:
            raise ValueError(f'{record.get("img_path", "?")}: pred_panoptic_seg.sem_seg must be '
                             f'[1, H, W] or [H, W], got shape {ids.shape}')
        record['panoptic'] = [dict(id=int(i), label=int(i % INSTANCE_OFFSET),
                                   mask=mask_to_rle(ids == i)) for i in np.unique(ids)]
    return record


def sample_record(sample: Any) -> Dict[str, Any]:
    """A data sample's predictions as plain values: an image's record, or ``{'frames': [...]}``
    for a video (``TrackDataSample``)."""
    frames = get_field(sample, 'video_data_samples')
    if frames is not None:
        return dict(frames=[_frame_record(f) for f in frames])
    return _frame_record(sample)


@METRICS.register_module()
class DumpSegResults(BaseMetric):
    """Write every test sample's predictions (:func:`sample_record`) to ``out_file``: a list in
    dataset order, pickled (``.pkl``) or as JSON (``.json``), written atomically. Returns no
    metric; place it beside the real metrics (``tools/test.py --out`` does)."""

    def __init__(self, out_file: str, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if Path(out_file).suffix not in FORMATS:
            raise ValueError(f'DumpSegResults: out_file must end with one of {FORMATS}, got {out_file!r}')
        self.out_file = Path(out_file)

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        self.results.extend(sample_record(s) for s in data_samples)

    def compute_metrics(self, results: List[Dict[str, Any]]) -> Dict[str, float]:
        if self.out_file.suffix == '.json':
            atomic_write_json(results, self.out_file)
        else:
            with atomic_open(self.out_file, 'wb') as f:
                pickle.dump(results, f)
        print_log(f'predictions of {len(results)} samples written to {self.out_file}', logger='current')
        return {}
