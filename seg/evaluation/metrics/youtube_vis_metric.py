"""YouTube-VIS 2019 mask mAP through mmdet's ``YouTubeVISMetric``, made to run in this stack."""
import types
import zipfile
from collections import defaultdict
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
from mmdet.evaluation import YouTubeVISMetric
from mmdet.evaluation.functional import ytviseval
from mmengine.logging import MMLogger

from seg.registry import METRICS
from seg.utils.atomic_io import atomic_open, atomic_write_json


class _NumpyWithFloatAlias(types.ModuleType):
    """numpy plus the ``np.float`` alias that numpy >= 1.24 removed."""
    float = float

    def __getattr__(self, name: str):
        return getattr(np, name)


@contextmanager
def _ytviseval_numpy_compat() -> Iterator[None]:
    # mmdet 3.3's YTVISeval.accumulate still calls np.float; give only that module the alias, and
    # only while evaluating, instead of patching numpy for everybody.
    original = ytviseval.np
    ytviseval.np = _NumpyWithFloatAlias('numpy')
    try:
        yield
    finally:
        ytviseval.np = original


@METRICS.register_module()
class YouTubeVIS2019Metric(YouTubeVISMetric):
    """mmdet's YouTube-VIS mAP (``youtube_vis/segm_mAP``, ...) with three fixes:

    - runs under numpy 2 (mmdet's ``YTVISeval`` uses the removed ``np.float``);
    - can evaluate more than once (mmdet's metric breaks on the second ``evaluate``, e.g. the
      second validation of a training run, because it leaves its video bookkeeping unusable);
    - with ``format_only`` (the hidden-GT valid/test splits) it needs ``outfile_prefix`` and writes
      ``<prefix>.json`` and the server's ``<prefix>.submission_file.zip`` (``results.json``
      inside) atomically, instead of into a temporary folder that is deleted at once.

    Input contract (mmdet's): one ``TrackDataSample`` per whole video whose frames carry
    ``img_id``, ``video_id``, ``frame_id``, ``ori_shape``, ``ori_video_length``, the GT
    ``instances`` (``bbox`` xyxy, ``bbox_label``, ``instance_id``, ``mask`` RLE) and
    ``pred_track_instances`` (``masks``, ``bboxes``, ``scores``, ``labels``, ``instances_id``).
    """

    def __init__(self,
                 metric: Union[str, List[str]] = 'youtube_vis_ap',
                 metric_items: Optional[Sequence[str]] = None,
                 outfile_prefix: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 format_only: bool = False) -> None:
        if format_only and outfile_prefix is None:
            raise ValueError('YouTubeVIS2019Metric: format_only needs outfile_prefix (where the '
                             'results json and submission zip go)')
        super().__init__(metric=metric, metric_items=metric_items, outfile_prefix=outfile_prefix,
                         collect_device=collect_device, prefix=prefix, format_only=format_only)

    def compute_metrics(self, results: List) -> Dict[str, float]:
        with _ytviseval_numpy_compat():
            return super().compute_metrics(results)

    def evaluate(self, size: int) -> dict:
        try:
            return super().evaluate(size)
        finally:
            # mmdet leaves a plain (empty) dict here; the next process_video needs the defaultdict.
            self._vis_meta_info = defaultdict(list)

    def save_pred_results(self, pred_results: List) -> None:
        json_path = f'{self.outfile_prefix}.json'
        zip_path = f'{self.outfile_prefix}.submission_file.zip'
        atomic_write_json(pred_results, json_path, indent=None)
        with atomic_open(zip_path, 'wb') as f, zipfile.ZipFile(f, 'w', zipfile.ZIP_DEFLATED) as zf:
            zf.write(json_path, 'results.json')
        MMLogger.get_current_instance().info(
            f'YouTube-VIS results written to {json_path}; submit {zip_path} to the server')
