"""Pseudo-labels from the SAM2 teacher, written in the dataset's own format.

DAVIS: propagate each sequence's first-frame annotation through its frames, frame by frame (each
object is prompted with its previous mask and that mask's box) -> palette PNGs under
``OUT_ROOT/Annotations/<resolution>/<seq>/`` (frame 0 is the given annotation, copied; the
sequence's JPEG folder is symlinked into ``OUT_ROOT/JPEGImages`` so OUT_ROOT is a DAVIS root):

    python tools/dataset_converters/make_pseudo_labels.py davis data/DAVIS data/DAVIS_pseudo \
        --year 2017 --split train --teacher-checkpoint data/pretrained/sam2.1_hiera_tiny.pt

COCO: a folder of images and either a COCO json of boxes (one mask per box annotation) or, without
``--boxes``, a grid of single clicks per image (the automatic mode) -> a COCO instances json with
RLE masks (``score`` = the teacher's predicted IoU):

    python tools/dataset_converters/make_pseudo_labels.py coco data/unlabelled/ out.json \
        [--boxes boxes.json | --points-per-side 16] --teacher-checkpoint ...
"""
import argparse
import os
import os.path as osp
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from pycocotools import mask as mask_utils
from torchvision.ops import nms

from seg.datasets.annotation_checks import check_ref, index_records
from seg.datasets.davis import MASK_FORMATS, davis_sequences, scan_davis_sequence
from seg.datasets.transforms.loading import read_davis_objects
from seg.evaluation.davis import write_davis_png
from seg.models.teachers import SAM2Teacher
from seg.structures.prompts import build_prompts
from seg.utils.atomic_io import atomic_write_json
from seg.utils.masks import mask_to_box
from seg.utils.rle import mask_to_rle
from seg.utils.validation import (
    check_dir,
    check_out_path,
    check_xywh_box,
    cli_input_errors,
    load_json_file,
    read_image_file,
    require_keys,
    require_list,
)

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
# DAVIS 2016 marks its single object 255 (binary 0/255); 2017 uses the object ids themselves.
BINARY_OBJECT_VALUE = 255


def build_teacher(args: argparse.Namespace) -> SAM2Teacher:
    return SAM2Teacher(config=args.teacher_config, checkpoint=args.teacher_checkpoint,
                       allow_random_init=args.allow_random_init, image_size=args.teacher_image_size,
                       overrides=args.teacher_overrides, dtype=args.dtype, device=args.device)


def read_rgb(path: str, device: str) -> torch.Tensor:
    """An image file as the teacher's input ``[1, 3, H, W]`` (RGB 0..255)."""
    # mmcv's orientation handling, as LoadImageFromFile; astype: a writable float copy for torch
    image = read_image_file(path, 'image', mode='RGB', exif_orientation=True).astype(np.float32)
    return torch.from_numpy(image).permute(2, 0, 1)[None].to(device)


def propagate_sequence(teacher: SAM2Teacher, frames: List[dict], mask_format: str, out_dir: Path,
                       device: str, bar: ProgressBar) -> int:
    """Write one DAVIS sequence's pseudo-labels; returns the number of frames written.

    Each object is prompted on frame t with its mask on frame t-1 (mask prompt) and that mask's box.
    An object whose mask vanished keeps its last non-empty mask as prompt, so it can be found again
    after an occlusion. Overlaps go to the object with the highest logit.
    """
    first = frames[0]['seg_map_path']
    if first is None:
        raise FileNotFoundError(f'no first-frame annotation for {frames[0]["img_path"]} (expected '
                                f'{osp.splitext(frames[0]["img_path"])[0]}.png under Annotations/)')
    ids, masks, _ = read_davis_objects(first, mask_format)
    if not ids:
        raise ValueError(f'{first}: the first-frame annotation has no object')
    values = [BINARY_OBJECT_VALUE] if mask_format == 'binary' else ids
    prompt_masks = torch.from_numpy(masks).float().to(device)
    # frame 0: the given annotation, as a palette PNG of the same values
    write_davis_png(_id_map(prompt_masks, values), out_dir / Path(first).name)
    bar.update()
    for frame in frames[1:]:
        image = read_rgb(frame['img_path'], device)
        if image.shape[-2:] != prompt_masks.shape[-2:]:
            raise ValueError(f'{frame["img_path"]} is {tuple(image.shape[-2:])}, the annotation '
                             f'{first} {tuple(prompt_masks.shape[-2:])}')
        boxes = [mask_to_box(m) for m in prompt_masks.bool().cpu().numpy()]
        prompts = build_prompts(bboxes=np.stack(boxes), masks=prompt_masks)
        logits = teacher(image, [prompts], mask_size=tuple(image.shape[-2:])).mask_logits
        write_davis_png(_id_map(logits, values), out_dir / f'{Path(frame["img_path"]).stem}.png')
        found = (logits > 0).flatten(1).any(1)
        prompt_masks = torch.where(found[:, None, None], (logits > 0).float(), prompt_masks)
        bar.update()
    return len(frames)


def _id_map(scores: torch.Tensor, values: Sequence[int]) -> np.ndarray:
    """Objects' ``[K, H, W]`` scores (logits, or 0/1 masks) -> one uint8 map of their ``values``:
    each pixel takes the object of highest score where that score is positive."""
    ids = torch.as_tensor(values, dtype=torch.uint8, device=scores.device)[scores.argmax(0)]
    return torch.where(scores.max(0).values > 0, ids, 0).cpu().numpy()


def davis_pseudo_labels(teacher: SAM2Teacher, data_root: str, out_root: str, year: str = '2017',
                        split: Optional[str] = None, resolution: str = '480p',
                        device: str = 'cpu') -> dict:
    """Propagate every sequence of a DAVIS root; returns a summary with the throughput."""
    if osp.realpath(out_root) == osp.realpath(data_root):
        raise ValueError(f'the output root {out_root} is the DAVIS root itself: pseudo-labels would '
                         f'overwrite its annotations; choose another folder')
    start = time.perf_counter()
    sequences = davis_sequences(data_root, year, split, resolution)
    videos = [(seq, scan_davis_sequence(data_root, resolution, seq)) for seq in sequences]
    bar = ProgressBar(sum(len(frames) for _, frames in videos))
    frames_done = 0
    for seq, frames in videos:
        if not frames:
            raise FileNotFoundError(f'no JPEG frame in {osp.join(data_root, "JPEGImages", resolution, seq)}')
        frames_done += propagate_sequence(teacher, frames, MASK_FORMATS[year],
                                          Path(out_root) / 'Annotations' / resolution / seq, device, bar)
        link = Path(out_root) / 'JPEGImages' / resolution / seq
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(osp.abspath(osp.dirname(frames[0]['img_path'])), target_is_directory=True)
    seconds = time.perf_counter() - start
    return dict(sequences=len(videos), frames=frames_done, frames_per_s=frames_done / max(seconds, 1e-9))


def coco_pseudo_labels(teacher: SAM2Teacher, image_dir: str, out_file: str,
                       boxes_file: Optional[str] = None, points_per_side: int = 16,
                       min_iou: float = 0.5, nms_iou: float = 0.7, device: str = 'cpu') -> dict:
    """Masks for a folder of images -> a COCO instances json with RLE masks.

    With ``boxes_file`` (COCO json: ``images`` with ``file_name`` relative to ``image_dir``,
    ``annotations`` with xywh ``bbox``), one mask per box annotation, keeping its id and category.
    Without it, every image is prompted with a ``points_per_side`` x ``points_per_side`` grid of
    single clicks; masks predicted with IoU below ``min_iou`` or empty are dropped and the rest are
    de-duplicated by box NMS at ``nms_iou`` (category 1, 'object').
    """
    check_dir(image_dir, 'image folder')
    if boxes_file is not None:
        coco = require_keys(load_json_file(boxes_file, '--boxes json', expect=dict),
                            ('images', 'annotations'), boxes_file)
        images, categories = require_list(coco, 'images', boxes_file), coco.get('categories', [])
        index_records(images, ('id', 'file_name'), f'{boxes_file}: image')
        if not images:
            raise ValueError(f'{boxes_file}: the image list is empty')
    else:
        names = sorted(f for f in os.listdir(image_dir) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not names:
            raise FileNotFoundError(f'no image ({", ".join(IMAGE_EXTENSIONS)}) in {image_dir}')
        images = [dict(id=i + 1, file_name=name) for i, name in enumerate(names)]
        categories = [dict(id=1, name='object')]
    by_image = {img['id']: [] for img in images}
    if boxes_file is not None:
        for i, ann in enumerate(require_list(coco, 'annotations', boxes_file)):
            where = f'{boxes_file}: annotation {i}'
            require_keys(ann, ('image_id', 'bbox'), where)
            check_xywh_box(ann['bbox'], f'{where} "bbox"')
            by_image[check_ref(ann['image_id'], by_image, f'{where} "image_id"', 'image')].append(ann)
    start = time.perf_counter()
    annotations, dropped = [], 0
    bar = ProgressBar(len(images))
    for img in images:
        image = read_rgb(osp.join(image_dir, img['file_name']), device)
        h, w = image.shape[-2:]
        if (img.get('height', h), img.get('width', w)) != (h, w):
            raise ValueError(f'{boxes_file}: image {img["file_name"]} is listed as '
                             f'{img["width"]}x{img["height"]} but is {w}x{h}')
        img.update(height=int(h), width=int(w))
        if boxes_file is not None:
            anns = by_image[img['id']]
            prompts = _box_prompts(anns) if anns else None
        else:
            anns, prompts = None, _grid_prompts(points_per_side, (h, w))
        if prompts is not None:
            # low-res logits: a grid of prompts at full resolution would not fit in memory
            out = teacher(image, [prompts])
            new, n_dropped = _annotations(out.mask_logits, out.iou_pred, (h, w), img['id'], anns,
                                          min_iou, nms_iou)
            annotations += new
            dropped += n_dropped
        bar.update()
    for i, ann in enumerate(annotations):
        ann.setdefault('id', i + 1)
    atomic_write_json(dict(images=images, annotations=annotations, categories=categories), out_file,
                      indent=None)
    seconds = time.perf_counter() - start
    return dict(images=len(images), masks=len(annotations), dropped=dropped,
                images_per_s=len(images) / max(seconds, 1e-9))


def _box_prompts(anns: List[dict]):
    xywh = np.array([a['bbox'] for a in anns], np.float32).reshape(-1, 4)  # checked when loaded
    return build_prompts(bboxes=np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1))


def _grid_prompts(points_per_side: int, hw: tuple):
    """One positive click per cell centre of a regular grid over the image."""
    h, w = hw
    centres = (np.arange(points_per_side) + 0.5) / points_per_side
    xs, ys = np.meshgrid(centres * w, centres * h)
    points = np.stack([xs.ravel(), ys.ravel()], 1)[:, None]
    return build_prompts(points=torch.from_numpy(points).float(),
                         point_labels=torch.ones(len(points), 1, dtype=torch.long))


def _annotations(logits: torch.Tensor, iou: torch.Tensor, hw: tuple, image_id: int,
                 anns: Optional[List[dict]], min_iou: float, nms_iou: float) -> tuple:
    """COCO annotations from the teacher's low-res ``logits`` (``[R, s, s]`` over the image): every
    non-empty mask of the prompted boxes ``anns``, or (``anns`` None) the grid's masks kept by
    ``min_iou`` and box NMS. Returns them and the number dropped."""
    rows = list(range(len(logits))) if anns is not None else \
        (iou >= min_iou).nonzero(as_tuple=True)[0].tolist()
    # upsampled one at a time, as the teacher maps its grid back over the whole image
    masks = [F.interpolate(logits[r][None, None], size=hw, mode='bilinear', align_corners=False)[0, 0]
             .gt(0).cpu().numpy() for r in rows]
    masks, rows = [m for m in masks if m.any()], [r for r, m in zip(rows, masks) if m.any()]
    if anns is None and rows:
        boxes = torch.from_numpy(np.stack([mask_to_box(m) for m in masks]))
        order = nms(boxes, iou[rows].float().cpu(), nms_iou).tolist()
        masks, rows = [masks[k] for k in order], [rows[k] for k in order]
    out = []
    for m, r in zip(masks, rows):
        rle = mask_to_rle(m)
        ann = dict(image_id=image_id, category_id=1, iscrowd=0) if anns is None else \
            {k: v for k, v in anns[r].items() if k not in ('segmentation', 'area', 'bbox', 'score')}
        out.append({**ann, 'segmentation': rle, 'area': float(mask_utils.area(rle)),
                    'bbox': mask_utils.toBbox(rle).tolist(), 'score': float(iou[r])})
    return out, len(logits) - len(out)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    teacher = argparse.ArgumentParser(add_help=False)
    teacher.add_argument('--teacher-config', default='configs/sam2.1/sam2.1_hiera_t.yaml',
                         help='SAM2 config name inside the sam2 package')
    teacher.add_argument('--teacher-checkpoint', default=None,
                         help='local SAM2 checkpoint (required unless --allow-random-init)')
    teacher.add_argument('--allow-random-init', action='store_true',
                         help='random teacher weights: tests and toy runs only, the labels are noise')
    teacher.add_argument('--teacher-image-size', type=int, default=1024)
    teacher.add_argument('--teacher-overrides', nargs='*', default=[],
                         help='extra hydra overrides of the SAM2 config')
    teacher.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    teacher.add_argument('--dtype', choices=('fp32', 'fp16', 'bf16'), default='fp32',
                         help='autocast dtype of the teacher (half dtypes for GPUs)')
    modes = parser.add_subparsers(dest='mode', required=True)
    davis = modes.add_parser('davis', parents=[teacher], help='propagate first-frame DAVIS masks')
    davis.add_argument('data_root', help='DAVIS root (JPEGImages/, Annotations/ with first frames)')
    davis.add_argument('out_root', help='output root (Annotations/<resolution>/<seq>/*.png)')
    davis.add_argument('--year', choices=tuple(MASK_FORMATS), default='2017',
                       help='annotation format: 2016 binary 0/255, 2017 palette ids')
    davis.add_argument('--split', default='all',
                       help='ImageSets/<year>/<split>.txt; "all" uses every sequence folder')
    davis.add_argument('--resolution', default='480p')
    coco = modes.add_parser('coco', parents=[teacher], help='COCO json of masks for a folder of images')
    coco.add_argument('image_dir')
    coco.add_argument('out_file', help='COCO instances json to write')
    coco.add_argument('--boxes', default=None, help='COCO json of boxes to turn into masks '
                                                    '(default: the automatic point-grid mode)')
    coco.add_argument('--points-per-side', type=int, default=16)
    coco.add_argument('--min-iou', type=float, default=0.5,
                      help='automatic mode: drop masks with a lower predicted IoU')
    coco.add_argument('--nms-iou', type=float, default=0.7, help='automatic mode: box NMS threshold')
    args = parser.parse_args(argv)
    if args.teacher_image_size < 1:
        parser.error(f'--teacher-image-size must be >= 1, got {args.teacher_image_size}')
    if args.mode == 'coco':
        if args.points_per_side < 1:
            parser.error(f'--points-per-side must be >= 1, got {args.points_per_side}')
        for flag, value in (('--min-iou', args.min_iou), ('--nms-iou', args.nms_iou)):
            if not 0 <= value <= 1:
                parser.error(f'{flag} must be in [0, 1], got {value}')
    if args.teacher_checkpoint is None and not args.allow_random_init:
        parser.error('--teacher-checkpoint is required (a local SAM2 checkpoint); '
                     '--allow-random-init builds a random teacher for tests only')
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.mode == 'davis':
        check_dir(args.data_root, 'DAVIS root')
        check_out_path(args.out_root, 'output root', folder=True)
    else:
        check_dir(args.image_dir, 'image folder')
        check_out_path(args.out_file, 'output json')
    teacher = build_teacher(args)
    if args.mode == 'davis':
        summary = davis_pseudo_labels(teacher, args.data_root, args.out_root, year=args.year,
                                      split=None if args.split == 'all' else args.split,
                                      resolution=args.resolution, device=args.device)
        print_log(f"\nwrote pseudo-labels for {summary['frames']} frames of {summary['sequences']} "
                  f"sequences under {args.out_root} ({summary['frames_per_s']:.2f} frames/s)",
                  logger='current')
    else:
        summary = coco_pseudo_labels(teacher, args.image_dir, args.out_file, boxes_file=args.boxes,
                                     points_per_side=args.points_per_side, min_iou=args.min_iou,
                                     nms_iou=args.nms_iou, device=args.device)
        print_log(f"\nwrote {summary['masks']} masks for {summary['images']} images to "
                  f"{args.out_file} ({summary['dropped']} empty/low-IoU dropped, "
                  f"{summary['images_per_s']:.2f} images/s)", logger='current')
    return summary


if __name__ == '__main__':
    with cli_input_errors('make_pseudo_labels.py'):
        main()
