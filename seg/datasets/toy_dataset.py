"""A small synthetic dataset written in the REAL on-disk formats FastSAM2 reads.

``make_toy_dataset(out_dir)`` writes, deterministically for a seed:

- ``coco/``: COCO-panoptic (``annotations/panoptic_<split>.json`` + ``annotations/panoptic_<split>/``
  RGB-id PNGs) and COCO instances (``annotations/instances_<split>.json``, RLE masks) for the images
  in ``<split>/`` (``train2017``, ``val2017``); 3 thing and 2 stuff classes with non-contiguous
  category ids, like COCO; a few unlabeled (void) pixels per image.
- ``youtube_vis_2019/``: ``train/JPEGImages/<video>/<frame>.jpg`` + ``train.json`` (YouTube-VIS 2019
  schema, per-frame uncompressed RLE, ``None`` where the object is not visible).
- ``davis2017/``: ``JPEGImages/480p/<seq>/``, ``Annotations/480p/<seq>/`` (palette PNG, object
  ids 1..K, void 255) and ``ImageSets/2017/{train,val}.txt``.

Scenes are textured shapes over a sky / grass background; in videos they move, change scale,
occlude each other, and (YouTube-VIS) appear late or leave early. The returned ``ToyDataset`` holds
the exact masks that were drawn, so tests can check loaders end to end.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np
from mmengine.utils import ProgressBar
from PIL import Image

from seg.evaluation.davis import davis_palette
from seg.utils.atomic_io import atomic_open, atomic_save_png, atomic_write_json
from seg.utils.masks import id2rgb, mask_to_box
from seg.utils.rle import mask_to_rle

THING_CLASSES = ('disc', 'box', 'triangle')
STUFF_CLASSES = ('sky', 'grass')
# Non-contiguous ids, things first, like COCO: loaders must map them to contiguous labels.
CATEGORY_IDS = {'disc': 1, 'box': 3, 'triangle': 7, 'sky': 120, 'grass': 125}
PANOPTIC_METAINFO = dict(classes=THING_CLASSES + STUFF_CLASSES, thing_classes=THING_CLASSES,
                         stuff_classes=STUFF_CLASSES)
VIS_METAINFO = dict(classes=THING_CLASSES)
DAVIS_VOID = 255

Mask = np.ndarray  # bool [H, W]


@dataclass
class ToyDataset:
    """Where the toy data was written and the masks that were drawn (for round-trip tests).

    ``coco[split][image file name]``: ``{segment id: (category id, mask)}``, void pixels excluded.
    ``ytvis[video name]``: per frame ``{annotation id: mask}`` of the visible objects.
    ``davis[sequence]``: per frame ``({object id: mask}, void mask)``.
    """
    root: Path
    coco: Dict[str, Dict[str, Dict[int, Tuple[int, Mask]]]] = field(default_factory=dict)
    ytvis: Dict[str, List[Dict[int, Mask]]] = field(default_factory=dict)
    davis: Dict[str, List[Tuple[Dict[int, Mask], Mask]]] = field(default_factory=dict)

    @property
    def coco_root(self) -> Path:
        return self.root / 'coco'

    @property
    def ytvis_root(self) -> Path:
        return self.root / 'youtube_vis_2019'

    @property
    def davis_root(self) -> Path:
        return self.root / 'davis2017'


@dataclass
class _Shape:
    """One object: its class, texture and trajectory (position/scale are linear in time)."""
    kind: str
    center: np.ndarray        # (x, y) at t = 0
    velocity: np.ndarray      # pixels per frame
    size: float               # radius-like size at t = 0
    growth: float             # relative size change per frame
    angle: float
    color: np.ndarray
    stripe: Tuple[float, float]  # texture frequency and orientation
    first: int = 0            # first frame the object exists
    last: int = 10**9         # last frame the object exists

    def mask(self, t: int, h: int, w: int) -> Mask:
        out = np.zeros((h, w), np.uint8)
        if not self.first <= t <= self.last:
            return out.astype(bool)
        cx, cy = self.center + self.velocity * t
        r = max(3.0, self.size * (1 + self.growth * t))
        if self.kind == 'disc':
            cv2.ellipse(out, (int(cx), int(cy)), (int(r), int(r * 0.8)), np.degrees(self.angle),
                        0, 360, 1, -1)
        else:
            n = 4 if self.kind == 'box' else 3
            a = self.angle + 0.05 * t + np.arange(n) * 2 * np.pi / n
            pts = np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1).round().astype(np.int32)
            cv2.fillPoly(out, [pts], 1)
        return out.astype(bool)

    def texture(self, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        ys, xs = np.mgrid[:h, :w].astype(np.float32)
        freq, theta = self.stripe
        wave = 0.75 + 0.25 * np.sin(freq * (xs * np.cos(theta) + ys * np.sin(theta)))
        noise = rng.normal(0, 8, (h, w, 1))
        return np.clip(self.color[None, None] * wave[..., None] + noise, 0, 255)


def _random_shape(rng: np.random.Generator, h: int, w: int, speed: float = 0.0) -> _Shape:
    kind = THING_CLASSES[rng.integers(len(THING_CLASSES))]
    return _Shape(kind=kind,
                  center=rng.uniform([0.15 * w, 0.2 * h], [0.85 * w, 0.85 * h]),
                  velocity=rng.uniform(-speed, speed, 2) * np.array([w, h]),
                  size=rng.uniform(0.06, 0.2) * min(h, w),  # varied scale
                  growth=rng.uniform(-0.03, 0.05) if speed else 0.0,
                  angle=rng.uniform(0, np.pi),
                  color=rng.uniform(40, 255, 3),
                  stripe=(rng.uniform(0.2, 0.8), rng.uniform(0, np.pi)))


def _background(rng: np.random.Generator, h: int, w: int, phase: float) -> Tuple[np.ndarray, Mask]:
    """Sky above a wavy horizon, grass below. Returns the BGR image and the sky mask."""
    ys, xs = np.mgrid[:h, :w].astype(np.float32)
    horizon = h * 0.45 + 0.06 * h * np.sin(xs / w * 2 * np.pi + phase)
    sky = ys < horizon
    sky_col = np.stack([230 - 60 * ys / h, 180 - 40 * ys / h, 110 + 0 * ys], -1)
    grass_col = np.stack([40 + 0 * ys, 140 + 30 * np.sin(xs * 0.7) * np.cos(ys * 0.9), 50 + 0 * ys], -1)
    img = np.where(sky[..., None], sky_col, grass_col) + rng.normal(0, 6, (h, w, 3))
    return img, sky


def _render(shapes: List[_Shape], t: int, h: int, w: int, rng: np.random.Generator,
            phase: float = 0.0) -> Tuple[np.ndarray, Mask, List[Mask]]:
    """Draw shapes back to front; returns the BGR uint8 image, sky mask and visible masks."""
    img, sky = _background(rng, h, w, phase)
    full = [s.mask(t, h, w) for s in shapes]
    for s, m in zip(shapes, full):
        img[m] = s.texture(h, w, rng)[m]
    visible = []
    for i, m in enumerate(full):
        covered = np.zeros_like(m)
        for later in full[i + 1:]:
            covered |= later
        visible.append(m & ~covered)  # occlusion: objects drawn later hide earlier ones
    return np.clip(img, 0, 255).astype(np.uint8), sky, visible


def _write_jpg(img: np.ndarray, path: Path) -> None:
    ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise RuntimeError(f'could not encode {path}')
    with atomic_open(path, 'wb') as f:
        f.write(buf.tobytes())


def uncompressed_rle(mask: Mask) -> dict:
    """YouTube-VIS 2019 style RLE: run lengths over the column-major mask, starting with zeros."""
    flat = np.asarray(mask, dtype=np.uint8).ravel(order='F')
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        runs = [0] + runs
    return {'counts': runs, 'size': list(mask.shape)}


def _box(mask: Mask) -> List[float]:
    """COCO ``xywh`` box of a mask."""
    x1, y1, x2, y2 = mask_to_box(mask).tolist()
    return [x1, y1, x2 - x1, y2 - y1]


def _categories() -> List[dict]:
    return [dict(id=CATEGORY_IDS[n], name=n, supercategory='shape' if n in THING_CLASSES else 'scene',
                 isthing=int(n in THING_CLASSES), color=[int(c) for c in
                                                        np.random.default_rng(CATEGORY_IDS[n])
                                                        .integers(0, 255, 3)])
            for n in THING_CLASSES + STUFF_CLASSES]


def _write_coco_split(root: Path, split: str, num: int, size: Tuple[int, int],
                      rng: np.random.Generator, start_id: int, bar: ProgressBar) -> dict:
    h, w = size
    images, pan_anns, inst_anns, truth = [], [], [], {}
    for k in range(num):
        image_id = start_id + k
        name = f'{image_id:012d}'
        shapes = [_random_shape(rng, h, w) for _ in range(rng.integers(2, 6))]
        img, sky, visible = _render(shapes, 0, h, w, rng, phase=rng.uniform(0, 6.28))
        _write_jpg(img, root / split / f'{name}.jpg')
        void = np.zeros((h, w), bool)
        vx, vy = rng.integers(0, w - 8), rng.integers(0, h - 8)
        void[vy:vy + 6, vx:vx + 8] = True  # unlabeled pixels, id 0 in the PNG
        seg_ids = rng.choice(np.arange(1, 256**3), size=len(shapes) + 2, replace=False)
        stuff_masks = [sky, ~sky]
        for m in visible:
            for s in stuff_masks:
                s &= ~m
        segments, pan = {}, np.zeros((h, w), np.int64)
        named = [(s.kind, m) for s, m in zip(shapes, visible)] + list(zip(STUFF_CLASSES, stuff_masks))
        for sid, (cname, m) in zip(seg_ids, named):
            m = m & ~void
            if m.any():
                pan[m] = sid
                segments[int(sid)] = (CATEGORY_IDS[cname], m)
        rgb = id2rgb(pan)
        atomic_save_png(Image.fromarray(rgb), root / 'annotations' / f'panoptic_{split}' / f'{name}.png')
        images.append(dict(id=image_id, file_name=f'{name}.jpg', height=h, width=w))
        infos = [dict(id=sid, category_id=cid, iscrowd=0, bbox=_box(m), area=int(m.sum()))
                 for sid, (cid, m) in segments.items()]
        pan_anns.append(dict(image_id=image_id, file_name=f'{name}.png', segments_info=infos))
        thing_ids = {CATEGORY_IDS[c] for c in THING_CLASSES}
        for sid, (cid, m) in segments.items():
            if cid in thing_ids:
                inst_anns.append(dict(id=sid, image_id=image_id, category_id=cid, iscrowd=0,
                                      bbox=_box(m), area=int(m.sum()), segmentation=mask_to_rle(m)))
        truth[f'{name}.png'] = segments
        bar.update()
    cats = _categories()
    atomic_write_json(dict(images=images, annotations=pan_anns, categories=cats),
                      root / 'annotations' / f'panoptic_{split}.json', indent=None)
    atomic_write_json(dict(images=images, annotations=inst_anns,
                           categories=[c for c in cats if c['isthing']]),
                      root / 'annotations' / f'instances_{split}.json', indent=None)
    return truth


def _video_shapes(rng: np.random.Generator, h: int, w: int, length: int,
                  late_entries: bool) -> List[_Shape]:
    shapes = [_random_shape(rng, h, w, speed=0.03) for _ in range(rng.integers(2, 5))]
    if late_entries:
        # one object appears late and one leaves early: YouTube-VIS tracks come and go
        shapes[-1].first = int(rng.integers(1, max(2, length // 2)))
        shapes[0].last = int(rng.integers(length // 2, length - 1))
    return shapes


def _write_ytvis(root: Path, num: int, size: Tuple[int, int], frames: Tuple[int, int],
                 rng: np.random.Generator, bar: ProgressBar) -> Dict[str, List[Dict[int, Mask]]]:
    h, w = size
    videos, anns, truth = [], [], {}
    ann_id = 1
    for v in range(num):
        name = f'toy{v:04d}'
        length = int(rng.integers(frames[0], frames[1] + 1))
        shapes = _video_shapes(rng, h, w, length, late_entries=True)
        phase = rng.uniform(0, 6.28)
        per_frame = [_render(shapes, t, h, w, rng, phase + 0.05 * t) for t in range(length)]
        files = []
        for t, (img, _, _) in enumerate(per_frame):
            # YouTube-VIS annotates every 5th frame of the source video; names keep that spacing
            files.append(f'{name}/{5 * t:05d}.jpg')
            _write_jpg(img, root / 'train' / 'JPEGImages' / files[-1])
        ids = list(range(ann_id, ann_id + len(shapes)))
        ann_id += len(shapes)
        truth[name] = [{} for _ in range(length)]
        for i, (shape, aid) in enumerate(zip(shapes, ids)):
            segs, boxes, areas = [], [], []
            for t, (_, _, visible) in enumerate(per_frame):
                m = visible[i]
                if m.any():
                    segs.append(uncompressed_rle(m))
                    boxes.append(_box(m))
                    areas.append(int(m.sum()))
                    truth[name][t][aid] = m
                else:
                    segs.append(None)
                    boxes.append(None)
                    areas.append(None)
            if any(s is not None for s in segs):
                anns.append(dict(id=aid, video_id=v + 1, category_id=CATEGORY_IDS[shape.kind],
                                 iscrowd=0, segmentations=segs, bboxes=boxes, areas=areas,
                                 width=w, height=h, length=1))
        videos.append(dict(id=v + 1, width=w, height=h, length=length, file_names=files))
        bar.update()
    cats = [dict(id=CATEGORY_IDS[n], name=n, supercategory='shape') for n in THING_CLASSES]
    atomic_write_json(dict(info={'description': 'FastSAM2 toy YouTube-VIS 2019'}, licenses=[],
                           videos=videos, annotations=anns, categories=cats),
                      root / 'train.json', indent=None)
    return truth


def _write_davis(root: Path, num: int, size: Tuple[int, int], frames: Tuple[int, int],
                 rng: np.random.Generator, bar: ProgressBar) -> dict:
    h, w = size
    truth, names = {}, []
    palette = davis_palette()
    for s in range(num):
        name = f'toy-seq{s}'
        names.append(name)
        length = int(rng.integers(frames[0], frames[1] + 1))
        shapes = _video_shapes(rng, h, w, length, late_entries=False)
        phase = rng.uniform(0, 6.28)
        truth[name] = []
        for t in range(length):
            img, _, visible = _render(shapes, t, h, w, rng, phase + 0.05 * t)
            _write_jpg(img, root / 'JPEGImages' / '480p' / name / f'{t:05d}.jpg')
            ids = np.zeros((h, w), np.uint8)
            for k, m in enumerate(visible, start=1):
                ids[m] = k
            # DAVIS marks ambiguous pixels void: here a 1-px ring around the first object
            first = visible[0].astype(np.uint8)
            ring = (cv2.dilate(first, np.ones((3, 3), np.uint8)) > 0) & ~visible[0]
            void = ring & (ids == 0)
            ids[void] = DAVIS_VOID
            png = Image.fromarray(ids, mode='P')
            png.putpalette(palette)
            atomic_save_png(png, root / 'Annotations' / '480p' / name / f'{t:05d}.png')
            truth[name].append(({k: ids == k for k in range(1, len(shapes) + 1) if (ids == k).any()},
                                void))
        bar.update()
    split = max(1, num - 1)
    for year_split, seqs in (('train', names[:split]), ('val', names[split:])):
        with atomic_open(root / 'ImageSets' / '2017' / f'{year_split}.txt') as f:
            f.write(''.join(f'{n}\n' for n in seqs))
    return truth


def make_toy_dataset(out_dir: Union[str, Path],
                     seed: int = 0,
                     num_images: Tuple[int, int] = (8, 4),
                     image_size: Tuple[int, int] = (192, 256),
                     num_videos: int = 4,
                     num_sequences: int = 3,
                     video_size: Tuple[int, int] = (128, 224),
                     video_frames: Tuple[int, int] = (10, 16),
                     parts: Optional[Tuple[str, ...]] = None) -> ToyDataset:
    """Write the toy dataset under ``out_dir`` (see the module docstring) and return what was drawn.

    Args:
        seed: the same seed writes the same files.
        num_images: COCO images in ``(train2017, val2017)``.
        image_size / video_size: ``(height, width)`` of COCO images / video frames.
        num_videos / num_sequences: YouTube-VIS videos / DAVIS sequences (the last DAVIS sequence
            is listed in ``ImageSets/2017/val.txt``, the others in ``train.txt``).
        video_frames: inclusive ``(min, max)`` frames per video.
        parts: which of ``('coco', 'ytvis', 'davis')`` to write (default all).
    """
    parts = ('coco', 'ytvis', 'davis') if parts is None else tuple(parts)
    unknown = set(parts) - {'coco', 'ytvis', 'davis'}
    if unknown:
        raise ValueError(f'make_toy_dataset: unknown parts {sorted(unknown)}')
    if min(*image_size, *video_size) < 32 or not 1 <= video_frames[0] <= video_frames[1]:
        raise ValueError('make_toy_dataset: sizes must be >= 32 px and 1 <= min frames <= max frames')
    out = ToyDataset(root=Path(out_dir))
    # one generator per part, so writing a subset gives the same files as writing everything
    rngs = {p: np.random.default_rng([seed, i]) for i, p in enumerate(('coco', 'ytvis', 'davis'))}
    total = (sum(num_images) if 'coco' in parts else 0) + (num_videos if 'ytvis' in parts else 0) + \
        (num_sequences if 'davis' in parts else 0)
    bar = ProgressBar(total)
    if 'coco' in parts:
        start = 1
        for split, num in zip(('train2017', 'val2017'), num_images):
            out.coco[split] = _write_coco_split(out.coco_root, split, num, image_size,
                                                rngs['coco'], start, bar)
            start += num
    if 'ytvis' in parts:
        out.ytvis = _write_ytvis(out.ytvis_root, num_videos, video_size, video_frames,
                                 rngs['ytvis'], bar)
    if 'davis' in parts:
        out.davis = _write_davis(out.davis_root, num_sequences, video_size, video_frames,
                                 rngs['davis'], bar)
    print()
    return out
