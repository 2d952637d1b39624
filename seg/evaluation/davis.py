"""DAVIS semi-supervised VOS evaluation: region similarity J, contour accuracy F, J&F.

Protocol of davisvideochallenge/davis2017-evaluation (semi-supervised task):

- Per object and frame, J = |S ∩ G| / |S ∪ G| (1 when the union is empty) and F = the F-measure
  of the two boundary maps, a boundary pixel counting as matched when the other boundary lies
  within a disk of radius ``ceil(0.008 · ‖(H, W)‖)``.
- The first and last annotated frames are not evaluated. GT void (255) counts as background. The
  object count is the largest id in the first GT frame; a result id above it is an error and a
  missing id is an empty mask.
- Per object: Mean, Recall (fraction of frames > 0.5) and Decay (mean of the first of four
  overlapping quantile bins minus mean of the last); the global numbers average over every object
  of the set, and J&F-Mean = (J-Mean + F-Mean) / 2.

DAVIS-2016 masks are binary 0/255 PNGs; read as DAVIS-2017 masks the 255 would be void and a
sequence would have no object at all, so ``binary_masks=True`` reads any non-zero value as
object 1 (the DAVIS-2016 convention) in GT and results.
"""
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmengine.utils import ProgressBar
from PIL import Image

from seg.utils.atomic_io import atomic_save_png
from seg.utils.masks import read_davis_png
from seg.utils.validation import check_dir

VOID_ID = 255
BOUND_TH = 0.008
GLOBAL_KEYS = ('J&F-Mean', 'J-Mean', 'J-Recall', 'J-Decay', 'F-Mean', 'F-Recall', 'F-Decay')
PathLike = Union[str, Path]


def region_similarity(gt: np.ndarray, pred: np.ndarray) -> float:
    """Jaccard index J of two binary masks; 1.0 when both are empty."""
    gt, pred = _same_shape_bool(gt, pred)
    union = np.sum(gt | pred)
    if union == 0:
        return 1.0
    return float(np.sum(gt & pred) / union)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary of a binary mask, offset half a pixel towards the origin.

    A pixel is boundary when it differs from its right, bottom or bottom-right neighbour. The last
    row only has a right neighbour, the last column only a bottom one, and the bottom-right
    corner is never boundary.
    """
    seg = np.asarray(mask).astype(bool)
    if seg.ndim != 2:
        raise ValueError(f'boundary_map needs a [H, W] mask, got shape {seg.shape}')
    out = np.zeros_like(seg)
    here = seg[:-1, :-1]
    out[:-1, :-1] = (here != seg[:-1, 1:]) | (here != seg[1:, :-1]) | (here != seg[1:, 1:])
    out[-1, :-1] = seg[-1, :-1] != seg[-1, 1:]
    out[:-1, -1] = seg[:-1, -1] != seg[1:, -1]
    return out


def boundary_radius(shape: Tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Matching tolerance in pixels: ``ceil(bound_th · ‖(H, W)‖)`` (8 px at 480x854)."""
    if not 0 < bound_th < 1:
        raise ValueError(f'bound_th is a fraction of the image diagonal in (0, 1), got {bound_th}')
    # np.linalg.norm, not math.hypot, so the product rounds exactly as in the reference.
    return int(np.ceil(bound_th * np.linalg.norm(shape)))


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    return (yy * yy + xx * xx <= radius * radius).astype(np.uint8)


def contour_accuracy(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """Boundary F-measure F of ``pred`` against ``gt``.

    Both boundaries empty gives 1; exactly one empty gives 0.
    """
    gt, pred = _same_shape_bool(gt, pred)
    gt_b, pred_b = boundary_map(gt), boundary_map(pred)
    n_gt, n_pred = int(gt_b.sum()), int(pred_b.sum())
    if n_gt == 0 and n_pred == 0:
        return 1.0
    if n_gt == 0 or n_pred == 0:
        return 0.0
    kernel = _disk(boundary_radius(gt.shape, bound_th))
    gt_near = cv2.dilate(gt_b.astype(np.uint8), kernel).astype(bool)
    pred_near = cv2.dilate(pred_b.astype(np.uint8), kernel).astype(bool)
    precision = np.sum(pred_b & gt_near) / float(n_pred)
    recall = np.sum(gt_b & pred_near) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def _same_shape_bool(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f'masks must be [H, W] of equal shape, got {a.shape} and {b.shape}')
    return a.astype(bool), b.astype(bool)


def decay_bins(n_frames: int) -> List[Tuple[int, int]]:
    """``[start, stop)`` index ranges of the four quantile bins the Decay compares.

    Bin edges are ``round(linspace(1, n, 5)) - 1`` (exact halves rounded up) and consecutive bins
    share their edge frame.
    """
    if n_frames < 1:
        raise ValueError(f'decay_bins needs at least one frame, got {n_frames}')
    edges = (np.round(np.linspace(1, n_frames, 5) + 1e-10) - 1).astype(np.int64)
    return [(int(edges[i]), int(edges[i + 1]) + 1) for i in range(4)]


def sequence_statistics(per_frame: Sequence[float]) -> Tuple[float, float, float]:
    """Mean, Recall (fraction > 0.5) and Decay of one object's per-frame J or F values."""
    values = np.asarray(per_frame, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or np.isnan(values).any():
        raise ValueError(f'per-frame values must be a non-empty 1-D array without NaN, got '
                         f'shape {values.shape}')
    bins = decay_bins(values.size)
    decay = values[slice(*bins[0])].mean() - values[slice(*bins[3])].mean()
    return float(values.mean()), float(np.mean(values > 0.5)), float(decay)


def _binarize(ids: np.ndarray, path: Path) -> np.ndarray:
    values = np.unique(ids[ids != 0])
    if values.size > 1:
        raise ValueError(f'{path}: a DAVIS-2016 binary mask has one non-zero value, found '
                         f'{values.tolist()} (a multi-object DAVIS-2017 mask?)')
    return (ids != 0).astype(np.int64)


def read_gt_ids(path: PathLike, binary_masks: bool = False) -> np.ndarray:
    """GT object ids of one frame: void (255) becomes background; binary masks become object 1."""
    ids = read_davis_png(path)
    if binary_masks:
        return _binarize(ids, Path(path))
    return np.where(ids == VOID_ID, 0, ids)


def read_result_ids(path: PathLike, binary_masks: bool = False) -> np.ndarray:
    """Object ids of one result frame (non-zero is object 1 for binary masks)."""
    ids = read_davis_png(path)
    return _binarize(ids, Path(path)) if binary_masks else ids


def evaluate_sequence(gt_dir: PathLike, result_dir: PathLike,
                      binary_masks: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Per-frame J and F of one sequence, each [n_objects, n_frames - 2]."""
    gt_dir, result_dir = Path(gt_dir), Path(result_dir)
    frames = sorted(gt_dir.glob('*.png'))
    if len(frames) < 3:
        raise ValueError(f'{gt_dir}: needs at least 3 annotated frames (the first and last are not '
                         f'evaluated), found {len(frames)}')
    n_objects = int(read_gt_ids(frames[0], binary_masks).max())
    if n_objects == 0:
        hint = '' if binary_masks else (' (if these are DAVIS-2016 binary 0/255 masks, evaluate '
                                         'them with binary_masks / --davis2016)')
        raise ValueError(f'{frames[0]}: the first GT frame has no object id{hint}')
    j = np.zeros((n_objects, len(frames) - 2))
    f = np.zeros((n_objects, len(frames) - 2))
    for t, frame in enumerate(frames[1:-1]):
        gt = read_gt_ids(frame, binary_masks)
        # The frame name is what precedes the first dot, as in the reference reader.
        res_path = result_dir / f'{frame.name.split(".")[0]}.png'
        res = read_result_ids(res_path, binary_masks)
        if res.shape != gt.shape:
            raise ValueError(f'{res_path}: result has shape {res.shape}, the GT {frame} {gt.shape}')
        if res.max() > n_objects:
            raise ValueError(f'{res_path}: object id {int(res.max())} but the GT of '
                             f'{gt_dir.name} has {n_objects} object(s)')
        for k in range(1, n_objects + 1):
            j[k - 1, t] = region_similarity(gt == k, res == k)
            f[k - 1, t] = contour_accuracy(gt == k, res == k)
    return j, f


def read_imageset(davis_root: PathLike, year: str = '2017', subset: str = 'val') -> List[str]:
    """Sequence names listed in ``ImageSets/<year>/<subset>.txt``."""
    path = Path(davis_root) / 'ImageSets' / str(year) / f'{subset}.txt'
    if not path.is_file():
        raise FileNotFoundError(f'DAVIS image set not found: {path}')
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f'{path} lists no sequence')
    return names


def evaluate_davis(davis_root: PathLike,
                   results_dir: PathLike,
                   subset: str = 'val',
                   year: str = '2017',
                   resolution: str = '480p',
                   sequences: Optional[Iterable[str]] = None,
                   binary_masks: bool = False,
                   progress: bool = True) -> dict:
    """Evaluate a results folder (``<seq>/<frame>.png``) against a DAVIS root.

    ``sequences`` defaults to ``ImageSets/<year>/<subset>.txt``. Returns the global numbers
    (:data:`GLOBAL_KEYS`, fractions), ``per_object`` (``'<seq>_<id>'`` -> J-Mean / F-Mean) and
    ``seconds_per_sequence``.
    """
    check_dir(davis_root, 'DAVIS root')
    check_dir(results_dir, 'results folder')
    ann_root = Path(davis_root) / 'Annotations' / resolution
    seqs = list(sequences) if sequences is not None else read_imageset(davis_root, year, subset)
    if not seqs or len(set(seqs)) != len(seqs):
        raise ValueError(f'sequences must be distinct names, at least one, got {seqs}')
    missing = [s for s in seqs if not (ann_root / s).is_dir()]
    if missing:
        raise FileNotFoundError(f'no GT annotation folder under {ann_root} for {missing}')
    stats: Dict[str, List[Tuple[float, float, float]]] = {'J': [], 'F': []}
    per_object, seconds = {}, {}
    bar = ProgressBar(len(seqs)) if progress else None
    for seq in seqs:
        start = time.perf_counter()
        j, f = evaluate_sequence(ann_root / seq, Path(results_dir) / seq, binary_masks)
        for k in range(j.shape[0]):
            stats['J'].append(sequence_statistics(j[k]))
            stats['F'].append(sequence_statistics(f[k]))
            per_object[f'{seq}_{k + 1}'] = {'J-Mean': stats['J'][-1][0],
                                            'F-Mean': stats['F'][-1][0]}
        seconds[seq] = time.perf_counter() - start
        if bar is not None:
            bar.update()
    summary = {}
    for measure in ('J', 'F'):
        mean, recall, decay = np.mean(np.asarray(stats[measure]), axis=0)
        summary.update({f'{measure}-Mean': float(mean), f'{measure}-Recall': float(recall),
                        f'{measure}-Decay': float(decay)})
    summary = {'J&F-Mean': (summary['J-Mean'] + summary['F-Mean']) / 2, **summary}
    return {**summary, 'per_object': per_object, 'seconds_per_sequence': seconds}


def format_davis_table(result: dict) -> str:
    """The global and per-object numbers as a plain-text table (fractions)."""
    lines = [' '.join(f'{k:>9}' for k in GLOBAL_KEYS),
             ' '.join(f'{result[k]:9.4f}' for k in GLOBAL_KEYS), '',
             f'{"Sequence":<24}{"J-Mean":>9}{"F-Mean":>9}']
    lines += [f'{name:<24}{v["J-Mean"]:9.4f}{v["F-Mean"]:9.4f}'
              for name, v in result['per_object'].items()]
    return '\n'.join(lines)


def davis_palette() -> List[int]:
    """The DAVIS (PASCAL VOC) colour palette: 256 RGB triplets, flattened, id 1 = dark red."""
    palette = []
    for index in range(256):
        rgb, bits = [0, 0, 0], index
        # The id's bits are dealt round-robin to R, G, B, most significant colour bit first.
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= (bits & 1) << shift
                bits >>= 1
        palette += rgb
    return palette


def masks_to_id_map(masks: np.ndarray, object_ids: Sequence[int]) -> np.ndarray:
    """Merge per-object bool masks [N, H, W] into one uint8 id map; the lower id wins overlaps."""
    masks = np.asarray(masks).astype(bool)
    ids = [int(i) for i in object_ids]
    if masks.ndim != 3 or masks.shape[0] != len(ids):
        raise ValueError(f'masks must be [N, H, W] with N = {len(ids)} ids, got {masks.shape}')
    bad = [i for i in ids if not 1 <= i < VOID_ID]
    if bad:
        raise ValueError(f'DAVIS object ids must be in 1..{VOID_ID - 1}, got {bad}')
    out = np.zeros(masks.shape[1:], dtype=np.uint8)
    for i in np.argsort(ids)[::-1]:
        out[masks[i]] = ids[i]
    return out


def write_davis_png(id_map: np.ndarray, path: PathLike) -> None:
    """Write an object-id map as a DAVIS palette PNG, atomically."""
    ids = np.asarray(id_map)
    if ids.ndim != 2 or ids.min(initial=0) < 0 or ids.max(initial=0) > 255:
        raise ValueError(f'{path}: id map must be [H, W] with values 0..255, got shape {ids.shape}')
    image = Image.fromarray(ids.astype(np.uint8))
    image.putpalette(davis_palette())  # turns the L image into a palette (P) image
    atomic_save_png(image, path)
