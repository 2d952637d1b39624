"""Interactive segmentation NoC / NoF / mIoU@k / box mIoU of any predictor (RITM click protocol).

    python tools/evaluation/eval_interactive.py --predictor MODULE:FACTORY \
        [--predictor-kwargs '{"k": v}'] --images DIR \
        (--masks DIR [--ignore-value 128] | --coco-panoptic JSON PNG_DIR) \
        [--max-clicks 20] [--target-iou 0.9] [--no-box] --out metrics.json [--plot curve.png]

``FACTORY(**kwargs)`` must return a predictor ``(image, clicks, prev_logits, box=None) -> logits``
(:class:`seg.evaluation.interactive.InteractivePredictor`); images are passed BGR [H, W, 3] uint8,
as mmcv loads them. Objects:

- ``--masks``: ``<stem>.png`` per image ``<stem>.<jpg|png>``; every distinct non-zero value other
  than ``--ignore-value`` is one object (a 0/255 mask is one object; GrabCut-style masks mark
  ignored pixels with 128).
- ``--coco-panoptic``: every segment of a COCO panoptic json + PNG folder. With
  ``--max-clicks 1`` this is RAP-SAM's COCO-SAM single-click mIoU (the click goes to the
  interior-most point of each segment).

The JSON holds the metrics plus per-object IoUs; ``--plot`` draws mIoU against the click count.
"""
import argparse
import importlib
import json
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import matplotlib
import mmcv
import numpy as np
from mmengine.utils import ProgressBar

from seg.evaluation.interactive import InteractivePredictor, evaluate_object, summarize_objects
from seg.evaluation.panoptic_quality import read_panoptic_png
from seg.utils.atomic_io import atomic_open, atomic_write_json
from seg.utils.masks import mask_to_box

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')
Object = Tuple[str, np.ndarray]  # (object name, GT mask with 1 / 0 / -1 ignore)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--predictor', required=True, help='MODULE:FACTORY building the predictor')
    parser.add_argument('--predictor-kwargs', default='{}', help='JSON keyword arguments')
    parser.add_argument('--images', required=True, help='image folder')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--masks', help='folder of per-image object-id mask PNGs')
    source.add_argument('--coco-panoptic', nargs=2, metavar=('JSON', 'PNG_DIR'),
                        help='COCO panoptic json and PNG folder: every segment is an object')
    parser.add_argument('--ignore-value', type=int, help='mask value of ignored pixels')
    parser.add_argument('--max-clicks', type=int, default=20)
    parser.add_argument('--noc-thrs', type=float, nargs='+', default=[0.5, 0.8, 0.85, 0.9])
    parser.add_argument('--pred-thr', type=float, default=0.49)
    parser.add_argument('--target-iou', type=float, help='stop a session at this IoU (no mIoU@k>1)')
    parser.add_argument('--no-box', action='store_true', help='skip the box-prompt mIoU')
    parser.add_argument('--out', required=True, help='metrics JSON to write')
    parser.add_argument('--plot', help='PNG of mIoU against the number of clicks')
    return parser.parse_args(argv)


def load_predictor(spec: str, kwargs: dict) -> InteractivePredictor:
    """Import ``MODULE:FACTORY`` and call the factory with ``kwargs``."""
    module_name, sep, attr = spec.partition(':')
    if not sep or not attr:
        raise ValueError(f'--predictor must be MODULE:FACTORY, got {spec!r}')
    return getattr(importlib.import_module(module_name), attr)(**kwargs)


def _find_image(images: Path, stem: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        if (images / f'{stem}{suffix}').is_file():
            return images / f'{stem}{suffix}'
    raise FileNotFoundError(f'no image {stem}{{{",".join(IMAGE_SUFFIXES)}}} in {images}')


def _mask_objects(mask_path: Path, ignore_value: Optional[int]) -> List[Object]:
    mask = mmcv.imread(str(mask_path), flag='unchanged')
    if mask is None or mask.ndim != 2:
        raise ValueError(f'{mask_path}: expected a single-channel mask PNG')
    ignore = mask == ignore_value if ignore_value is not None else np.zeros(mask.shape, bool)
    objects = []
    for value in np.unique(mask[(mask != 0) & ~ignore]).tolist():
        gt = (mask == value).astype(np.int64)
        gt[ignore] = -1
        objects.append((f'{mask_path.stem}:{value}', gt))
    return objects


def iter_images(args: argparse.Namespace) -> Iterator[Tuple[Path, List[Object]]]:
    """(image path, its objects) for every image of the chosen source."""
    images = Path(args.images)
    if args.masks is not None:
        for mask_path in sorted(Path(args.masks).glob('*.png')):
            yield _find_image(images, mask_path.stem), _mask_objects(mask_path, args.ignore_value)
        return
    ann_json, png_dir = args.coco_panoptic
    for ann in json.loads(Path(ann_json).read_text())['annotations']:
        ids = read_panoptic_png(Path(png_dir) / ann['file_name'])
        yield (_find_image(images, Path(ann['file_name']).stem),
               [(f'{ann["image_id"]}:{s["id"]}', (ids == s['id']).astype(np.int64))
                for s in ann['segments_info']])


def count_images(args: argparse.Namespace) -> int:
    if args.masks is not None:
        return len(list(Path(args.masks).glob('*.png')))
    return len(json.loads(Path(args.coco_panoptic[0]).read_text())['annotations'])


def plot_miou_curve(metrics: dict, path: str) -> None:
    ks = sorted(int(k.split('@')[1]) for k in metrics if k.startswith('mIoU@'))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(ks, [metrics[f'mIoU@{k}'] for k in ks], marker='o')
    ax.set_xlabel('number of clicks')
    ax.set_ylabel('mIoU')
    ax.set_title(f'{metrics["num_objects"]} objects')
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_open(path, 'wb') as f:
        fig.savefig(f, format='png', dpi=120)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    predictor = load_predictor(args.predictor, json.loads(args.predictor_kwargs))
    results, per_object = [], []
    bar = ProgressBar(count_images(args))
    for image_path, objects in iter_images(args):
        image = mmcv.imread(str(image_path))
        for name, gt in objects:
            if gt.shape != image.shape[:2]:
                raise ValueError(f'{name}: mask {gt.shape} and image {image_path} '
                                 f'{image.shape[:2]} differ in size')
            box = None if args.no_box else mask_to_box(gt == 1)
            result = evaluate_object(image, gt, predictor, args.max_clicks, args.pred_thr,
                                     args.target_iou, box)
            results.append(result)
            per_object.append({'object': name, 'ious': result['ious'].tolist(),
                               **({'box_iou': result['box_iou']} if box is not None else {})})
        bar.update()
    metrics = summarize_objects(results, args.noc_thrs, args.max_clicks)
    print()
    for key, value in metrics.items():
        print(f'{key:>12}: {value:.4f}' if isinstance(value, float) else f'{key:>12}: {value}')
    atomic_write_json({**metrics, 'per_object': per_object}, args.out)
    if args.plot:
        plot_miou_curve(metrics, args.plot)
    return metrics


if __name__ == '__main__':
    main()
