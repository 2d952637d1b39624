"""Interactive segmentation evaluation: the RITM click protocol (NoC / NoF / mIoU@k).

The protocol is the one of RITM (SamsungLabs/ritm_interactive_segmentation), reused unchanged by
SimpleClick and FocalClick, so numbers are comparable across those papers:

- The first prediction is all-empty. Each round the simulator looks at the false-negative and
  false-positive regions of the current prediction (pixels labelled ``ignore_label`` excluded),
  pads both with one pixel of zeros so the image border acts as region boundary, takes the exact
  L2 distance transform, crops the pad and zeroes the pixels already clicked. The click goes to the
  first (row-major) maximum of the larger of the two distance maps: positive iff the
  false-negative maximum is strictly larger (ties give a negative click).
- The predictor answers with logits; the binary prediction is ``sigmoid(logits) > 0.49``.
- IoU ignores ``ignore_label`` pixels. IoUs are stored as float32 and compared with the NoC
  thresholds in float32, as the reference does: an IoU of 0.8999999999 rounds to float32(0.9)
  and reaches NoC@0.9.

A predictor is any callable ``predictor(image, clicks, prev_logits) -> logits`` (see
:class:`InteractivePredictor`), so FastSAM2, the SAM2 teacher or a toy predictor are evaluated the
same way.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Protocol, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from seg.utils.validation import read_image_file

ArrayLike = Union[np.ndarray, torch.Tensor]


@dataclass(frozen=True)
class Click:
    """One simulated click at pixel ``(y, x)``; positive clicks mark the object."""
    y: int
    x: int
    is_positive: bool


class InteractivePredictor(Protocol):
    """What the interactive protocol drives: ``predictor(image, clicks, prev_logits) -> logits``."""

    def __call__(self, image: np.ndarray, clicks: Sequence[Click],
                 prev_logits: Optional[np.ndarray],
                 box: Optional[Sequence[float]] = None) -> ArrayLike:
        """``image`` is the [H, W, 3] uint8 image in the channel order the pipeline loaded it,
        ``clicks`` all clicks so far (oldest first), ``prev_logits`` the logits this predictor
        returned for the previous round (None on the first). ``box`` (xyxy pixels) is passed, with
        no clicks, only for the box-prompt evaluation. Returns [H, W] logits."""


class ClickSession(NamedTuple):
    """The outcome of one simulated interactive session on one object."""
    ious: np.ndarray  # float32 [n_clicks], IoU after each click
    clicks: List[Click]


def _border_distance(region: np.ndarray) -> np.ndarray:
    """Exact L2 distance of each region pixel to the nearest non-region pixel or image border."""
    padded = np.pad(region, 1, mode='constant').astype(np.uint8)
    return cv2.distanceTransform(padded, cv2.DIST_L2, 0)[1:-1, 1:-1]


def _check_gt(gt_mask: np.ndarray, ignore_label: int) -> np.ndarray:
    gt = np.asarray(gt_mask)
    if gt.ndim != 2:
        raise ValueError(f'gt_mask must be [H, W], got shape {gt.shape}')
    bad = ~((gt == 0) | (gt == 1) | (gt == ignore_label))
    if bad.any():
        raise ValueError(f'gt_mask values must be 0 (background), 1 (object) or {ignore_label} '
                         f'(ignore), got {np.unique(gt[bad]).tolist()}')
    if not (gt == 1).any():
        raise ValueError('gt_mask has no object pixel (value 1): the object cannot be evaluated')
    return gt


def _check_pred(pred_mask: ArrayLike, shape: Tuple[int, int]) -> np.ndarray:
    pred = pred_mask.cpu().numpy() if isinstance(pred_mask, torch.Tensor) else np.asarray(pred_mask)
    if pred.shape != shape:
        raise ValueError(f'prediction has shape {pred.shape}, the GT mask {shape}')
    return pred.astype(bool)


class ClickSimulator:
    """Places the next click where the current prediction is most wrong (RITM protocol).

    Args:
        gt_mask: [H, W] with 1 = object, 0 = background, ``ignore_label`` = ignored.
        ignore_label: value of ignored GT pixels.
    """

    def __init__(self, gt_mask: np.ndarray, ignore_label: int = -1) -> None:
        gt = _check_gt(gt_mask, ignore_label)
        self._object = gt == 1
        self._valid = gt != ignore_label
        self._not_clicked = np.ones(gt.shape, dtype=bool)
        self.shape: Tuple[int, int] = gt.shape
        self.clicks: List[Click] = []

    def next_click(self, pred_mask: ArrayLike) -> Click:
        """Record and return the click that corrects ``pred_mask`` ([H, W] bool) the most."""
        pred = _check_pred(pred_mask, self.shape)
        false_neg = self._object & ~pred & self._valid
        false_pos = ~self._object & pred & self._valid
        fn_dist = _border_distance(false_neg) * self._not_clicked
        fp_dist = _border_distance(false_pos) * self._not_clicked
        is_positive = bool(fn_dist.max() > fp_dist.max())
        dist = fn_dist if is_positive else fp_dist
        # argmax returns the first maximum in row-major order, as the protocol requires.
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        click = Click(int(y), int(x), is_positive)
        self._not_clicked[y, x] = False
        self.clicks.append(click)
        return click


def mask_iou(gt_mask: np.ndarray, pred_mask: ArrayLike, ignore_label: int = -1) -> float:
    """IoU of ``pred_mask`` with the object (GT == 1); GT pixels == ``ignore_label`` are ignored."""
    gt = _check_gt(gt_mask, ignore_label)
    pred = _check_pred(pred_mask, gt.shape)
    obj, valid = gt == 1, gt != ignore_label
    # Object pixels are valid, so the union is never empty once _check_gt passed.
    return float(np.sum(pred & obj & valid) / np.sum((pred | obj) & valid))


def _binarize_logits(logits: ArrayLike, shape: Tuple[int, int], pred_thr: float) -> np.ndarray:
    t = torch.as_tensor(logits).detach().float().cpu()
    if tuple(t.shape) != shape:
        raise ValueError(f'predictor returned logits of shape {tuple(t.shape)}, expected {shape}')
    return (t.sigmoid() > pred_thr).numpy()


def run_click_session(image: np.ndarray,
                      gt_mask: np.ndarray,
                      predictor: InteractivePredictor,
                      max_clicks: int = 20,
                      pred_thr: float = 0.49,
                      target_iou: Optional[float] = None,
                      ignore_label: int = -1) -> ClickSession:
    """Simulate up to ``max_clicks`` clicks on one object, stopping once ``target_iou`` is reached.

    Early stopping shortens ``ious``; mIoU@k needs full sessions (``target_iou=None``).
    """
    if max_clicks < 1:
        raise ValueError(f'max_clicks must be >= 1, got {max_clicks}')
    simulator = ClickSimulator(gt_mask, ignore_label)
    shape = simulator.shape
    pred = np.zeros(shape, dtype=bool)
    logits = None
    ious = []
    for _ in range(max_clicks):
        simulator.next_click(pred)
        logits = predictor(image, list(simulator.clicks), logits)
        pred = _binarize_logits(logits, shape, pred_thr)
        iou = mask_iou(gt_mask, pred, ignore_label)
        ious.append(iou)
        if target_iou is not None and iou >= target_iou:
            break
    return ClickSession(np.asarray(ious, dtype=np.float32), simulator.clicks)


def box_prompt_iou(image: np.ndarray,
                   gt_mask: np.ndarray,
                   predictor: InteractivePredictor,
                   box: Sequence[float],
                   pred_thr: float = 0.49,
                   ignore_label: int = -1) -> float:
    """IoU of the prediction for a single box prompt (SAM-style box mIoU)."""
    gt = _check_gt(gt_mask, ignore_label)
    logits = predictor(image, [], None, box=[float(v) for v in box])
    return mask_iou(gt, _binarize_logits(logits, gt.shape, pred_thr), ignore_label)


def interior_point(mask: np.ndarray) -> Tuple[int, int]:
    """``(y, x)`` of the interior-most pixel of a binary mask: the protocol's first click.

    This is the single click of RAP-SAM's COCO-SAM evaluation (one click per panoptic segment).
    """
    m = np.asarray(mask).astype(np.int64)
    click = ClickSimulator(m).next_click(np.zeros(m.shape, dtype=bool))
    return click.y, click.x


def _as_float32_sessions(ious_per_sample: Sequence[ArrayLike]) -> List[np.ndarray]:
    sessions = [np.asarray(s, dtype=np.float32).reshape(-1) for s in ious_per_sample]
    if not sessions:
        raise ValueError('no samples: the list of per-sample IoUs is empty')
    empty = [i for i, s in enumerate(sessions) if s.size == 0]
    if empty:
        raise ValueError(f'samples {empty[:5]} have no IoU (a session has at least one click)')
    return sessions


def compute_noc(ious_per_sample: Sequence[ArrayLike],
                thresholds: Sequence[float],
                max_clicks: int = 20) -> Tuple[List[float], List[int]]:
    """NoC@thr and NoF@thr over samples.

    NoC of a sample is the 1-based index of the first click whose IoU reaches ``thr`` (``>=``), or
    ``max_clicks`` if none does; NoC@thr is its mean. NoF@thr counts the samples whose NoC equals
    ``max_clicks`` (so a sample first reaching the threshold at the last click counts too).
    """
    sessions = _as_float32_sessions(ious_per_sample)
    nocs, nofs = [], []
    for thr in thresholds:
        thr = np.float32(thr)  # the reference compares float32 IoUs with thresholds in float32
        per_sample = np.array([int(np.argmax(s >= thr)) + 1 if (s >= thr).any() else max_clicks
                               for s in sessions])
        nocs.append(float(per_sample.mean()))
        nofs.append(int((per_sample == max_clicks).sum()))
    return nocs, nofs


def miou_at_clicks(ious_per_sample: Sequence[ArrayLike], max_clicks: int = 20) -> np.ndarray:
    """mIoU after k clicks for k = 1..max_clicks ([max_clicks] array); needs full sessions."""
    sessions = _as_float32_sessions(ious_per_sample)
    short = [i for i, s in enumerate(sessions) if s.size < max_clicks]
    if short:
        raise ValueError(f'mIoU@k needs {max_clicks} clicks per sample (no early stop), samples '
                         f'{short[:5]} have fewer')
    return np.stack([s[:max_clicks] for s in sessions]).mean(axis=0)


def evaluate_object(image: np.ndarray,
                    gt_mask: np.ndarray,
                    predictor: InteractivePredictor,
                    max_clicks: int = 20,
                    pred_thr: float = 0.49,
                    target_iou: Optional[float] = None,
                    box: Optional[Sequence[float]] = None,
                    ignore_label: int = -1) -> dict:
    """One object's ``{'ious': float32 [n_clicks]}`` plus ``'box_iou'`` when a ``box`` is given."""
    session = run_click_session(image, gt_mask, predictor, max_clicks, pred_thr, target_iou,
                                ignore_label)
    result = {'ious': session.ious}
    if box is not None:
        result['box_iou'] = box_prompt_iou(image, gt_mask, predictor, box, pred_thr, ignore_label)
    return result


def summarize_objects(results: Sequence[dict],
                      noc_thrs: Sequence[float] = (0.5, 0.8, 0.85, 0.9),
                      max_clicks: int = 20) -> Dict[str, float]:
    """NoC@thr, NoF@thr, mIoU@k and box_mIoU over :func:`evaluate_object` results.

    mIoU@k is given for every k when all sessions are complete, else only mIoU@1; ``box_mIoU``
    when every object has a box IoU.
    """
    if not results:
        raise ValueError('no object was evaluated')
    ious = [r['ious'] for r in results]
    metrics: Dict[str, float] = {}
    for thr, noc, nof in zip(noc_thrs, *compute_noc(ious, noc_thrs, max_clicks)):
        metrics[f'NoC@{thr}'] = noc
        metrics[f'NoF@{thr}'] = nof
    complete = all(len(s) >= max_clicks for s in ious)
    for k, miou in enumerate(miou_at_clicks(ious, max_clicks if complete else 1), start=1):
        metrics[f'mIoU@{k}'] = float(miou)
    if all('box_iou' in r for r in results):
        metrics['box_mIoU'] = float(np.mean([r['box_iou'] for r in results]))
    metrics['num_objects'] = len(results)
    return metrics


# the image files next to an object-id mask folder (``eval_interactive.py --masks``)
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')
GTObject = Tuple[str, np.ndarray]  # (object name, GT mask with 1 / 0 / -1 ignore)


def find_image(images: Path, stem: str) -> Path:
    """The image ``<stem>`` (one of ``IMAGE_SUFFIXES``) in the folder ``images``."""
    for suffix in IMAGE_SUFFIXES:
        if (images / f'{stem}{suffix}').is_file():
            return images / f'{stem}{suffix}'
    raise FileNotFoundError(f'no image {stem}{{{",".join(IMAGE_SUFFIXES)}}} in {images}')


def mask_objects(mask_path: Path, ignore_value: Optional[int]) -> List[GTObject]:
    """The objects of a single-channel object-id mask PNG (0: background, ``ignore_value``:
    neither), each as ``('<stem>:<value>', GT mask with 1 / 0 / -1 ignore)``."""
    mask = read_image_file(mask_path, 'mask PNG', max_pixels=None, mode=None)
    if mask.ndim != 2:
        raise ValueError(f'{mask_path}: expected a single-channel (L / palette / 16-bit) mask PNG '
                         f'of object values, got shape {mask.shape}')
    ignore = mask == ignore_value if ignore_value is not None else np.zeros(mask.shape, bool)
    objects = []
    for value in np.unique(mask[(mask != 0) & ~ignore]).tolist():
        gt = (mask == value).astype(np.int64)
        gt[ignore] = -1
        objects.append((f'{mask_path.stem}:{value}', gt))
    return objects
