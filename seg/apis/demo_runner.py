"""The four demo tasks of ``demo/demo.py`` as importable functions (tests call them directly).

- ``run_interactive_image``: prompts -> one mask per object: overlay PNG + COCO RLE json;
- ``run_panoptic``: panoptic PNG (COCO panoptic format: every segment id IS its colour, so the
  picture is a colour map and ``seg.evaluation.panoptic_quality.read_panoptic_png`` reads the
  ids back) + overlay PNG + json (``segments_info`` with category names);
- ``run_video`` (``interactive_video`` and ``vos``): ``propagate_in_video`` from frame 0 ->
  overlay MP4, one DAVIS palette PNG per frame, RLE json per frame and object.

Prompts of every source (CLI strings, a ``--prompts-file``, stdin lines, a first-frame mask) are
parsed into ``PromptSpec`` rows and checked against the input's size and length BEFORE the model
is built, so a typo fails in a second; errors are ``DemoInputError`` naming the bad token / entry.

Prompt-file schema (a JSON list; one such object per line on stdin)::

    {"frame": 0, "obj_id": 1, "points": [[x, y], ...], "labels": [1, 0, ...],
     "box": [x1, y1, x2, y2], "text": "a bear", "mask": "path/to/mask.png"}

``obj_id`` (1..254, the DAVIS PNG ids) is required, ``frame`` defaults to 0, and at least one of
``points`` / ``box`` / ``text`` / ``mask`` is given. Coordinates are in video pixels; ``labels``
(1 positive, 0 negative) default to all positive. ``mask`` is a PNG of the video's size (relative
paths: from the prompt file's folder, stdin: from the working directory); a 0/1 or 0/255 PNG is
the object's mask, a DAVIS palette PNG with several ids gives the pixels equal to ``obj_id``.
Several entries for one (frame, object) accumulate (clicks are added), as in a click session.
"""
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TextIO, Tuple, Union

import cv2
import numpy as np
import torch
from mmdet.evaluation import INSTANCE_OFFSET
from mmdet.visualization.palette import get_palette
from mmengine.utils import ProgressBar
from PIL import Image

from seg.evaluation.davis import VOID_ID, davis_palette, masks_to_id_map, read_davis_png, write_davis_png
from seg.evaluation.panoptic_quality import id2rgb, rgb2id
from seg.utils.atomic_io import atomic_save_png, atomic_write_json
from seg.utils.realtime_benchmark import latency_stats
from seg.utils.rle import mask_record
from seg.utils.validation import (
    check_boxes,
    check_finite,
    check_int,
    check_labels,
    check_points,
    load_json_file,
    loads_json_line,
)

from .predictor import SegPredictor, nearest_extent, nearest_index
from .video_io import VideoInput, open_video
from .video_predictor import FastSAM2VideoPredictor
from .visualization import draw_panoptic, draw_prompt_result

PathLike = Union[str, Path]
ENTRY_KEYS = ('frame', 'obj_id', 'points', 'labels', 'box', 'text', 'mask')
MAX_OBJ_ID = VOID_ID - 1  # object ids end up in DAVIS palette PNGs (255 is void)


class DemoInputError(ValueError):
    """A bad demo input: file, prompt token or entry, mask size. The message names it."""


@dataclass
class PromptSpec:
    """The prompts of one object on one frame, in input pixels; ``where`` names their source
    (e.g. ``'--points object 2'``, ``'prompts.json entry 3'``) for error messages."""
    obj_id: int
    frame: int = 0
    points: List[List[float]] = field(default_factory=list)
    labels: List[int] = field(default_factory=list)
    box: Optional[List[float]] = None
    text: str = ''
    mask: Optional[np.ndarray] = None  # bool [H, W]
    where: str = ''


# ---------------------------------------------------------------------- prompt parsing
def parse_cli_prompts(points: Optional[str] = None, boxes: Optional[str] = None,
                      texts: Optional[str] = None) -> List[PromptSpec]:
    """``--points`` / ``--boxes`` / ``--texts`` strings -> one spec per object (ids 1..N, frame 0).

    Objects are separated by ';' (every given kind lists the same number); within an object,
    ``--points`` has clicks ``x,y,label`` separated by spaces, ``--boxes`` one ``x1,y1,x2,y2``,
    ``--texts`` one text; ``-`` leaves that kind out for the object.
    """
    kinds = {k: None if v is None else [s.strip() for s in v.split(';')]
             for k, v in (('points', points), ('boxes', boxes), ('texts', texts))}
    counts = {k: len(v) for k, v in kinds.items() if v is not None}
    if not counts:
        return []
    if len(set(counts.values())) != 1:
        raise DemoInputError(f'each prompt kind must list the same number of objects '
                             f'(";"-separated): {counts}')
    specs = [PromptSpec(obj_id=k + 1, where=f'object {k + 1}') for k in range(max(counts.values()))]
    for spec, obj in zip(specs, kinds['points'] or []):
        for token in ([] if obj in ('-', '') else obj.split()):
            x, y, label = _numbers(token, 3, '--points', spec.where,
                                   'x,y,label (label 1 positive, 0 negative)')
            if label not in (0, 1):
                raise DemoInputError(f'--points {spec.where}: bad click {token!r}: the label must '
                                     f'be 1 (positive) or 0 (negative)')
            spec.points.append([x, y])
            spec.labels.append(int(label))
    for spec, obj in zip(specs, kinds['boxes'] or []):
        if obj not in ('-', ''):
            spec.box = _check_box(_numbers(obj, 4, '--boxes', spec.where, 'x1,y1,x2,y2'),
                                  f'--boxes {spec.where}')
    for spec, obj in zip(specs, kinds['texts'] or []):
        spec.text = '' if obj == '-' else obj
    for spec in specs:
        if not (spec.points or spec.box is not None or spec.text):
            raise DemoInputError(f'{spec.where} has no prompt (every kind is "-")')
    return specs


def _numbers(token: str, n: int, flag: str, where: str, form: str) -> List[float]:
    parts = token.split(',')
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != n or not np.isfinite(values).all():
        raise DemoInputError(f'{flag} {where}: bad token {token!r}: expected {form}')
    return values


def _check_box(box: Sequence[float], where: str) -> List[float]:
    x1, y1, x2, y2 = box
    if x2 < x1 or y2 < y1:
        raise DemoInputError(f'{where}: box {list(box)} must be x1,y1,x2,y2 with x2 >= x1, y2 >= y1')
    return [float(v) for v in box]


def parse_prompt_entry(entry: Any, where: str, frame_hw: Tuple[int, int],
                       base_dir: PathLike = '.') -> PromptSpec:
    """One prompt-file entry / stdin line (a dict, see the module docstring) -> a spec."""
    if not isinstance(entry, dict):
        raise DemoInputError(f'{where}: an entry is a JSON object {{"frame", "obj_id", ...}}, got '
                             f'{type(entry).__name__}')
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise DemoInputError(f'{where}: unknown keys {unknown} (known: {list(ENTRY_KEYS)})')
    try:
        obj_id = check_int(entry.get('obj_id'), f'{where}: "obj_id"', 1, MAX_OBJ_ID)
        frame = check_int(entry.get('frame', 0), f'{where}: "frame"', 0)
        spec = PromptSpec(obj_id=obj_id, frame=frame, where=where)
        if entry.get('points') is not None:
            pts = check_finite(entry['points'], f'{where}: "points"')
            if pts.ndim != 2 or pts.shape[1] != 2 or not len(pts):
                raise ValueError(f'{where}: "points" must be [[x, y], ...], got {entry["points"]!r}')
            labels = entry.get('labels', [1] * len(pts))
            labels = check_labels(labels, f'{where}: "labels"', (1, 0))
            if labels.shape != (len(pts),):
                raise ValueError(f'{where}: "labels" must list 1 (positive) or 0 (negative) for '
                                 f'each of the {len(pts)} points, got {entry["labels"]!r}')
            spec.points, spec.labels = pts.tolist(), labels.tolist()
        elif 'labels' in entry:
            raise ValueError(f'{where}: "labels" given without "points"')
        if entry.get('box') is not None:
            box = check_finite(entry['box'], f'{where}: "box"')
            if box.shape != (4,):
                raise ValueError(f'{where}: "box" must be [x1, y1, x2, y2], got {entry["box"]!r}')
            spec.box = _check_box(box.tolist(), where)
    except (TypeError, ValueError) as e:
        raise DemoInputError(str(e)) from None
    text = entry.get('text')
    if text is not None:
        if not isinstance(text, str) or not text.strip():
            raise DemoInputError(f'{where}: "text" must be a non-empty string, got {text!r}')
        spec.text = text
    if entry.get('mask') is not None:
        path = Path(base_dir) / str(entry['mask'])
        masks = read_id_masks(path, frame_hw, f'{where}: "mask"')
        if len(masks) == 1:
            spec.mask = next(iter(masks.values()))
        elif obj_id in masks:
            spec.mask = masks[obj_id]
        else:
            raise DemoInputError(f'{where}: "mask" {path} has objects {sorted(masks)}, not '
                                 f'obj_id {obj_id}')
    if not (spec.points or spec.box is not None or spec.text or spec.mask is not None):
        raise DemoInputError(f'{where}: no prompt: give "points", "box", "text" or "mask"')
    return spec


def load_prompts_file(path: PathLike, frame_hw: Tuple[int, int]) -> List[PromptSpec]:
    """A ``--prompts-file`` (JSON list of entries) -> specs; masks are read relative to it."""
    path = Path(path)
    try:
        entries = load_json_file(path, '--prompts-file', expect=list)
    except (FileNotFoundError, ValueError) as e:
        raise DemoInputError(str(e)) from None
    return [parse_prompt_entry(e, f'{path.name} entry {i}', frame_hw, path.parent)
            for i, e in enumerate(entries)]


def parse_prompt_line(line: str, where: str, frame_hw: Tuple[int, int]) -> Optional[PromptSpec]:
    """One stdin line -> a spec (None for a blank line or a '#' comment)."""
    line = line.strip()
    if not line or line.startswith('#'):
        return None
    try:
        entry = loads_json_line(line, where)
    except ValueError as e:
        raise DemoInputError(str(e)) from None
    return parse_prompt_entry(entry, where, frame_hw, os.getcwd())


def read_id_masks(path: PathLike, frame_hw: Tuple[int, int], what: str = '--first-mask'
                  ) -> Dict[int, np.ndarray]:
    """A mask PNG -> object id -> bool mask ``[H, W]``.

    A DAVIS palette (or grey) PNG gives one object per index (0 background, 255 void); a binary
    0/255 PNG is object 1. The PNG must have the frame's size ``frame_hw``.
    """
    try:
        ids = read_davis_png(path)
    except (FileNotFoundError, ValueError, OSError) as e:
        raise DemoInputError(f'{what}: {e}') from None
    if ids.shape != tuple(frame_hw):
        raise DemoInputError(f'{what} {path} is {ids.shape[1]}x{ids.shape[0]} (WxH) but the frames '
                             f'are {frame_hw[1]}x{frame_hw[0]}')
    values = sorted(set(np.unique(ids).tolist()) - {0})
    if values == [VOID_ID]:
        return {1: ids == VOID_ID}
    masks = {v: ids == v for v in values if v != VOID_ID}
    if not masks:
        raise DemoInputError(f'{what} {path} has no object (all pixels are 0 / void)')
    return masks


def check_specs(specs: Sequence[PromptSpec], frame_hw: Tuple[int, int],
                num_frames: Optional[int] = None) -> None:
    """Every point and box inside the frame (clipped just outside it, see
    ``seg.utils.validation``), every frame index inside the video."""
    for s in specs:
        if num_frames is not None and s.frame >= num_frames:
            raise DemoInputError(f'{s.where}: frame {s.frame} is past the end of the video '
                                 f'({num_frames} frames)')
        try:
            if s.points:
                s.points = check_points(s.points, s.labels, frame_hw, f'{s.where}: point',
                                        allowed_labels=(1, 0))[0][0].tolist()
            if s.box is not None:
                s.box = check_boxes(s.box, frame_hw, f'{s.where}: box')[0].tolist()
        except ValueError as e:
            raise DemoInputError(str(e)) from None


# ---------------------------------------------------------------------- live prompts (stdin)
class StdinPrompts:
    """Prompt lines (one JSON entry each) from a text stream, e.g. ``sys.stdin``.

    A pipe or file is read to its end at once (``initial``), so a scripted run is deterministic.
    A terminal is read live by a daemon thread: ``poll`` returns the lines typed since the last
    call; ``run_video`` calls it between frames and a prompt takes effect from the next frame
    propagation reaches (a line for a frame already passed is reported and skipped). A bad line
    from a pipe raises; a bad line typed live is reported and skipped.
    """

    def __init__(self, stream: TextIO, frame_hw: Tuple[int, int]) -> None:
        self.frame_hw = frame_hw
        self.live = stream.isatty()
        self._queue: 'queue.Queue[Optional[str]]' = queue.Queue()
        self._count = 0
        self.ended = False  # a live stream reached its end
        self.initial: List[PromptSpec] = []
        if self.live:
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()
        else:
            for line in stream:
                spec = self._parse(line)
                if spec is not None:
                    self.initial.append(spec)

    def _read(self, stream: TextIO) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)  # end of input

    def _parse(self, line: str) -> Optional[PromptSpec]:
        self._count += 1
        return parse_prompt_line(line, f'stdin line {self._count}', self.frame_hw)

    def poll(self, block: bool = False) -> List[PromptSpec]:
        """The live lines that arrived (``block``: wait for at least one line or the end)."""
        specs = []
        while not self.ended:
            try:
                line = self._queue.get(block=block and not specs)
            except queue.Empty:
                break
            if line is None:
                self.ended = True
                break
            try:
                spec = self._parse(line)
            except DemoInputError as e:
                print(f'skipped: {e}', file=sys.stderr)
                continue
            if spec is not None:
                specs.append(spec)
        return specs


# ---------------------------------------------------------------------- outputs
def overlay_ids(frame_rgb: np.ndarray, id_map: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """RGB frame with each object blended in its DAVIS palette colour (as in the PNGs)."""
    palette = np.asarray(davis_palette(), dtype=np.float32).reshape(256, 3)
    out = frame_rgb.astype(np.float32)
    sel = id_map > 0
    out[sel] = (1 - alpha) * out[sel] + alpha * palette[id_map[sel]]
    return out.clip(0, 255).astype(np.uint8)


def _write_png(rgb: np.ndarray, path: Path) -> None:
    atomic_save_png(Image.fromarray(rgb), path)


def print_latency(times_ms: Sequence[float], what: str = 'frame') -> Dict[str, float]:
    """Print and return mean / p50 / p90 of per-frame latencies."""
    stats = latency_stats(times_ms)
    print(f'latency per {what} ({stats["n"]} {what}s): mean {stats["mean_ms"]:.1f} ms, '
          f'p50 {stats["p50_ms"]:.1f} ms, p90 {stats["p90_ms"]:.1f} ms ({stats["fps"]:.1f} FPS)')
    return stats


def _timed(fn: Callable[[], Any], device: Any) -> Tuple[Any, float]:
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, (time.perf_counter() - t0) * 1e3


def _sync(device: Any) -> None:
    if str(device).startswith('cuda'):
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------- image tasks
def run_interactive_image(predictor: SegPredictor, image_bgr: np.ndarray, specs: Sequence[PromptSpec],
                          out_stem: PathLike) -> Dict[str, Any]:
    """One mask per prompted object -> ``<out_stem>.png`` (overlay) and ``<out_stem>.json``
    (per object: COCO RLE, area, xywh bbox, score, its prompts). Returns the json's content."""
    if not specs:
        raise DemoInputError('interactive_image needs prompts: --points, --boxes and/or --texts')
    check_specs(specs, image_bgr.shape[:2])
    has = lambda attr: any(getattr(s, attr) for s in specs)  # noqa: E731
    kwargs = dict(points=[s.points for s in specs] if has('points') else None,
                  point_labels=[s.labels for s in specs] if has('points') else None,
                  boxes=[s.box for s in specs] if any(s.box is not None for s in specs) else None,
                  texts=[s.text for s in specs] if has('text') else None)
    result, ms = _timed(lambda: predictor.prompt(image_bgr, **kwargs), predictor.image_predictor.device)
    inst = result.pred_instances
    masks = inst.masks.cpu().numpy()
    objects = []
    for k, spec in enumerate(specs):
        label = int(inst.labels[k])
        objects.append(dict(obj_id=spec.obj_id, **mask_record(masks[k]), score=float(inst.scores[k]),
                            label=label, category_name=predictor.class_names[label],
                            prompt=dict(points=spec.points, labels=spec.labels, box=spec.box,
                                        text=spec.text)))
    out_stem = Path(out_stem)
    _write_png(draw_prompt_result(image_bgr, result, predictor.class_names),
               out_stem.with_suffix('.png'))
    h, w = image_bgr.shape[:2]
    summary = dict(task='interactive_image', height=h, width=w, objects=objects,
                   latency=print_latency([ms], 'image'))
    atomic_write_json(summary, out_stem.with_suffix('.json'))
    return summary


def panoptic_to_coco(pan: np.ndarray, class_names: Sequence[str], num_things: int,
                     seed: int = 0, out_hw: Optional[Tuple[int, int]] = None
                     ) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
    """mmdet's panoptic map (``label + instance * INSTANCE_OFFSET``, label ``len(class_names)``
    void) -> COCO panoptic segment ids (at ``pan``'s size) and ``segments_info``.

    Each segment's id is an RGB colour (``rgb2id``) near its class's palette colour, so the
    PNG is a readable colour map; ``category_id`` is the model's class index. ``out_hw``: the
    size the ids are written at (nearest upsampling, ``upsample_nearest``); areas and boxes are
    exact at that size, computed on ``pan`` (a full-size map is never needed)."""
    num_classes = len(class_names)
    palette = get_palette('random', num_classes)
    rng = np.random.default_rng(seed)
    values, inverse = np.unique(pan, return_inverse=True)
    inverse = inverse.reshape(pan.shape)
    h, w = pan.shape
    rows, cols = (nearest_index(n, m) for n, m in zip((h, w), out_hw or (h, w)))
    row_count, col_count = (np.bincount(i.numpy(), minlength=n) for i, n in ((rows, h), (cols, w)))
    new_ids = np.zeros(len(values), dtype=np.int64)  # 0 = VOID
    used, segments = {0}, []
    for k, value in enumerate(values.tolist()):
        label = value % INSTANCE_OFFSET
        if label >= num_classes:
            continue
        color = np.array(palette[label], dtype=np.int64)
        seg_id = int(rgb2id(color[None, None])[0, 0])
        while seg_id in used:  # another instance of the class: jitter its colour
            color = np.clip(np.array(palette[label]) + rng.integers(-30, 31, 3), 0, 255)
            seg_id = int(rgb2id(color[None, None])[0, 0])
        used.add(seg_id)
        new_ids[k] = seg_id
        ys, xs = np.nonzero(inverse == k)
        area = int((row_count[ys] * col_count[xs]).sum())
        y0, y1 = nearest_extent(rows, int(ys.min()), int(ys.max()))
        x0, x1 = nearest_extent(cols, int(xs.min()), int(xs.max()))
        segments.append(dict(id=seg_id, category_id=int(label), category_name=class_names[label],
                             isthing=int(label < num_things), area=area,
                             bbox=[x0, y0, x1 - x0, y1 - y0]))
    return new_ids[inverse], segments


def upsample_nearest(a: np.ndarray, out_hw: Tuple[int, int]) -> np.ndarray:
    """``[h, w, ...]`` -> ``[H, W, ...]`` by nearest pixel centres (allocates the output only)."""
    if tuple(a.shape[:2]) == tuple(out_hw):
        return a
    rows, cols = (nearest_index(n, m).numpy() for n, m in zip(a.shape[:2], out_hw))
    return np.take(np.take(a, rows, axis=0), cols, axis=1)  # rows first: a small intermediate


def run_panoptic(predictor: SegPredictor, image_bgr: np.ndarray, out_stem: PathLike
                 ) -> Dict[str, Any]:
    """Panoptic segmentation -> ``<out_stem>.png`` (COCO panoptic colour map, input size),
    ``<out_stem>_overlay.png`` and ``<out_stem>.json`` (``segments_info`` with names).

    Memory scales with the processing size: the map is fused at ``SegPredictor.panoptic``'s
    fusion size and only the RGB PNG is made at the input size; the overlay is drawn at the
    fusion size and resized to the input size."""
    result, ms = _timed(lambda: predictor.panoptic(image_bgr, rescale=False),
                        predictor.image_predictor.device)
    pan = result.pred_panoptic_seg.sem_seg[0].cpu().numpy().astype(np.int64)
    num_things = getattr(predictor.model.panoptic_fusion_head, 'num_things_classes',
                         len(predictor.class_names))
    h, w = image_bgr.shape[:2]
    ids, segments = panoptic_to_coco(pan, predictor.class_names, num_things, out_hw=(h, w))
    out_stem = Path(out_stem)
    atomic_save_png(Image.fromarray(upsample_nearest(id2rgb(ids), (h, w))),
                    out_stem.with_suffix('.png'))
    if pan.shape == (h, w):
        overlay = draw_panoptic(image_bgr, result, predictor.class_names)
    else:  # drawn at the fusion size (the drawer holds a mask per segment), shown at input size
        small = cv2.resize(image_bgr, pan.shape[::-1], interpolation=cv2.INTER_AREA)
        overlay = cv2.resize(draw_panoptic(small, result, predictor.class_names), (w, h),
                             interpolation=cv2.INTER_LINEAR)
    _write_png(overlay, out_stem.with_name(out_stem.name + '_overlay.png'))
    summary = dict(task='panoptic', height=h, width=w, file_name=out_stem.with_suffix('.png').name,
                   segments_info=segments, latency=print_latency([ms], 'image'))
    atomic_write_json(summary, out_stem.with_suffix('.json'))
    return summary


# ---------------------------------------------------------------------- video tasks
def apply_prompt(predictor: FastSAM2VideoPredictor, state: Any, spec: PromptSpec) -> None:
    """Feed one spec to the video predictor (mask first, then clicks / box added, then text)."""
    try:
        if spec.mask is not None:
            predictor.add_new_mask(state, spec.frame, spec.obj_id, spec.mask)
        if spec.points or spec.box is not None:
            predictor.add_new_points_or_box(
                state, spec.frame, spec.obj_id, points=spec.points or None,
                labels=spec.labels or None, box=spec.box, clear_old_points=False)
        if spec.text:
            predictor.add_text_prompt(state, spec.frame, spec.obj_id, spec.text)
    except (ValueError, IndexError, KeyError, TypeError) as e:
        raise DemoInputError(f'{spec.where}: {e}') from None


class VideoOutputs:
    """The video task's writers: overlay MP4 (written under a temporary name, moved into place
    at ``close``), one DAVIS palette PNG per frame, per-frame RLE records for the json."""

    def __init__(self, out_stem: Path, frame_hw: Tuple[int, int], fps: float) -> None:
        self.out_stem = out_stem
        self.png_dir = out_stem.parent / out_stem.name
        self.png_dir.mkdir(parents=True, exist_ok=True)
        self.mp4 = out_stem.with_suffix('.mp4')
        self._tmp = self.mp4.with_name(f'.{self.mp4.stem}.tmp.mp4')
        h, w = frame_hw
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
        if not self._writer.isOpened():
            raise RuntimeError(f'cannot write {self.mp4}: OpenCV has no mp4v encoder here')
        self.frames: List[Dict[str, Any]] = []

    def add(self, frame_idx: int, frame_rgb: np.ndarray, obj_ids: List[int], masks: np.ndarray
            ) -> None:
        id_map = masks_to_id_map(masks, obj_ids) if obj_ids else np.zeros(frame_rgb.shape[:2], np.uint8)
        write_davis_png(id_map, self.png_dir / f'{frame_idx:05d}.png')
        vis = overlay_ids(frame_rgb, id_map)
        cv2.putText(vis, f'{frame_idx}', (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
        self._writer.write(vis[..., ::-1])
        self.frames.append(dict(frame=frame_idx, objects=[
            dict(obj_id=o, **mask_record(m)) for o, m in zip(obj_ids, masks)]))

    def close(self, keep: bool = True) -> None:
        """Finish the MP4 (``keep=False``: a failed run leaves no partial file)."""
        self._writer.release()
        if keep:
            os.replace(self._tmp, self.mp4)
        else:
            self._tmp.unlink(missing_ok=True)


def run_video(predictor: FastSAM2VideoPredictor, video: VideoInput, task: str,
              specs: Sequence[PromptSpec], out_stem: PathLike,
              live: Optional[StdinPrompts] = None, progress: bool = True) -> Dict[str, Any]:
    """Track the prompted objects from frame 0 to the end of ``video`` (a path or a
    frame list): each prompt joins when propagation reaches its frame. Writes
    ``<out_stem>.mp4`` (overlay), ``<out_stem>/NNNNN.png`` (DAVIS palette) and
    ``<out_stem>.json`` (the prompts fed, in order; per frame, per object: COCO RLE, area,
    bbox). Returns the json's content.
    ``live`` prompts (a terminal) are polled between frames."""
    state = predictor.init_state(video)
    hw = (state.video_height, state.video_width)
    n = state.num_frames
    specs = list(specs)
    check_specs(specs, hw, n)
    applied: List[Dict[str, Any]] = []  # what was fed, in order, for the json

    def feed(spec: PromptSpec) -> None:
        apply_prompt(predictor, state, spec)
        applied.append(dict(frame=spec.frame, obj_id=spec.obj_id, source=spec.where))

    for spec in specs:
        feed(spec)
    if not state.prompts and live is not None and live.live:
        print('waiting for a first prompt line on stdin ...', file=sys.stderr)
        while not state.prompts:
            new = live.poll(block=True)
            if not new and live.ended:
                break
            for spec in _usable(new, hw, n, -1):
                feed(spec)
    if not state.prompts:
        raise DemoInputError(f'{task} needs at least one prompt' + (
            ' (--first-mask)' if task == 'vos' else
            ' (--points / --boxes / --texts, --prompts-file or --frame-prompts-stdin)'))
    fps = getattr(state.source, 'fps', 0.0) or 24.0
    outputs = VideoOutputs(Path(out_stem), hw, fps)
    bar = ProgressBar(n, file=sys.stdout) if progress else None
    times: List[float] = []
    frames = predictor.propagate_in_video(state, start_frame_idx=0)
    # the overlay reads the frames again with its own decoder: frames come in order, so it never
    # seeks and the predictor's decoder is never moved (its processed-frame cache stays small)
    pictures = open_video(video, cache_size=1)
    try:
        while True:
            step, ms = _timed(lambda: _next_masks(frames), predictor.device)
            if step is None:
                break
            frame_idx, obj_ids, masks = step
            times.append(ms)
            outputs.add(frame_idx, pictures.read_frame(frame_idx), obj_ids, masks)
            if live is not None and live.live:
                for spec in _usable(live.poll(), hw, n, frame_idx):
                    feed(spec)
            if bar is not None:
                bar.update()
    except BaseException:
        outputs.close(keep=False)
        raise
    finally:
        pictures.close()
        state.source.close()
    outputs.close()
    if bar is not None:
        print()
    summary = dict(task=task, height=hw[0], width=hw[1], num_frames=len(outputs.frames),
                   obj_ids=list(state.obj_ids), fps=fps, prompts=applied, frames=outputs.frames,
                   latency=print_latency(times))
    atomic_write_json(summary, Path(out_stem).with_suffix('.json'))
    return summary


def _next_masks(frames: Iterator) -> Optional[Tuple[int, List[int], np.ndarray]]:
    """The next propagated frame with its masks on the host (inside the timed region)."""
    step = next(frames, None)
    if step is None:
        return None
    frame_idx, obj_ids, masks = step
    return frame_idx, list(obj_ids), (masks[:, 0] > 0).cpu().numpy()  # bool, or logits


def _usable(specs: List[PromptSpec], hw: Tuple[int, int], n: Optional[int], done: int
            ) -> List[PromptSpec]:
    """Live specs that are valid and name a frame propagation has not passed (others reported)."""
    ok = []
    for spec in specs:
        try:
            check_specs([spec], hw, n)
        except DemoInputError as e:
            print(f'skipped: {e}', file=sys.stderr)
            continue
        if spec.frame <= done:
            print(f'skipped: {spec.where}: frame {spec.frame} was already processed (at frame '
                  f'{done})', file=sys.stderr)
            continue
        ok.append(spec)
    return ok


__all__ = ['DemoInputError', 'PromptSpec', 'StdinPrompts', 'parse_cli_prompts', 'parse_prompt_entry',
           'parse_prompt_line', 'load_prompts_file', 'read_id_masks', 'check_specs',
           'overlay_ids', 'panoptic_to_coco', 'print_latency', 'run_interactive_image',
           'run_panoptic', 'run_video', 'apply_prompt']
