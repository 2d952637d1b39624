"""Registered VOS metric: writes DAVIS-layout palette PNGs, then J&F against the GT on disk."""
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from seg.registry import METRICS

from ..davis import GLOBAL_KEYS, evaluate_davis, format_davis_table, masks_to_id_map, write_davis_png
from .sample_fields import get_field, to_numpy


@METRICS.register_module()
class DAVISMetric(BaseMetric):
    """DAVIS semi-supervised J&F for the VOS model output.

    ``process`` receives one ``TrackDataSample`` per video; each frame's ``DetDataSample`` carries
    ``img_path`` (``.../JPEGImages/<res>/<seq>/<frame>.jpg``: the sequence is the parent folder,
    the frame the file stem), ``ori_shape`` and ``pred_instances.masks`` (bool [N, H, W] at the
    original resolution) with ``pred_instances.instances_id`` (the DAVIS object ids 1..K). Each
    frame becomes ``<outfile_dir>/<seq>/<frame>.png`` (palette PNG, written atomically; where
    masks overlap the lower id wins). ``compute_metrics`` then evaluates the processed sequences
    against ``<davis_root>/Annotations/<resolution>`` exactly like the official evaluation
    (:func:`seg.evaluation.davis.evaluate_davis`) and returns the global numbers as fractions.

    ``outfile_dir`` must be shared by all ranks in multi-node runs; without it a temporary
    folder is used and removed with the metric. ``binary_masks`` reads DAVIS-2016 0/255 GT.
    ``davis_root=None`` takes the root from the frames' ``img_path`` (``<root>/JPEGImages/<res>/
    <seq>/<frame>.jpg``), so a config whose dataset root is overridden needs no second override.
    """

    default_prefix: Optional[str] = 'davis'

    def __init__(self,
                 davis_root: Optional[str] = None,
                 outfile_dir: Optional[str] = None,
                 resolution: str = '480p',
                 binary_masks: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.davis_root = davis_root
        self._frame_root: Optional[Path] = None  # inferred from img_path when davis_root is None
        self.resolution = resolution
        self.binary_masks = binary_masks
        self._tmp_dir = None
        if outfile_dir is None:
            self._tmp_dir = tempfile.TemporaryDirectory(prefix='davis_results_')
            outfile_dir = self._tmp_dir.name
        self.outfile_dir = Path(outfile_dir)

    def __del__(self) -> None:
        if self._tmp_dir is not None:
            self._tmp_dir.cleanup()

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        for video in data_samples:
            frames = get_field(video, 'video_data_samples')
            if not frames:
                raise KeyError('DAVISMetric expects TrackDataSamples with video_data_samples')
            sequences = {self._write_frame(frame) for frame in frames}
            if len(sequences) != 1:
                raise ValueError(f'one video holds frames of several sequences: '
                                 f'{sorted(sequences)}')
            self.results.append(sequences.pop())

    def _write_frame(self, frame: Any) -> str:
        img_path = Path(get_field(frame, 'img_path'))
        seq, name = img_path.parent.name, img_path.stem
        if self.davis_root is None:
            root = _root_of_frame(img_path)
            if self._frame_root not in (None, root):
                raise ValueError(f'DAVISMetric: frames from two DAVIS roots, {self._frame_root} '
                                 f'and {root}; set davis_root')
            self._frame_root = root
        pred = get_field(frame, 'pred_instances')
        if pred is None:
            raise KeyError(f'{img_path}: frame has no pred_instances')
        masks, ids = get_field(pred, 'masks'), get_field(pred, 'instances_id')
        if masks is None or ids is None:
            raise KeyError(f'{img_path}: pred_instances needs masks and instances_id')
        masks, ids = to_numpy(masks), to_numpy(ids).tolist()
        ori_shape = tuple(get_field(frame, 'ori_shape'))[:2]
        if masks.shape[1:] != ori_shape:
            raise ValueError(f'{img_path}: predicted masks are {masks.shape[1:]}, the original '
                             f'frame {ori_shape}; DAVIS results must be at the original resolution')
        write_davis_png(masks_to_id_map(masks, ids), self.outfile_dir / seq / f'{name}.png')
        return seq

    def compute_metrics(self, results: List[str]) -> Dict[str, float]:
        davis_root = self.davis_root or self._frame_root
        if davis_root is None:
            raise ValueError('DAVISMetric: davis_root was not given and no frame was processed to '
                             'infer it from')
        sequences = list(dict.fromkeys(results))  # unique, first-seen order
        result = evaluate_davis(davis_root, self.outfile_dir, resolution=self.resolution,
                                sequences=sequences, binary_masks=self.binary_masks)
        if is_main_process():
            MMLogger.get_current_instance().info(
                f'DAVIS J&F on {len(sequences)} sequence(s), results in {self.outfile_dir}\n'
                f'{format_davis_table(result)}')
        return {k: result[k] for k in GLOBAL_KEYS}


def _root_of_frame(img_path: Path) -> Path:
    """``<root>/JPEGImages/<res>/<seq>/<frame>.jpg`` -> ``<root>``."""
    if len(img_path.parents) < 4 or img_path.parents[2].name != 'JPEGImages':
        raise ValueError(f'DAVISMetric: cannot infer the DAVIS root from {img_path} (expected '
                         '<root>/JPEGImages/<resolution>/<sequence>/<frame>.jpg); set davis_root')
    return img_path.parents[3]
