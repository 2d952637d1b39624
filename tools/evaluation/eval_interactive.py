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
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import matplotlib
import numpy as np
from mmengine.utils import ProgressBar

from seg.evaluation.interactive import (
    GTObject,
    InteractivePredictor,
    evaluate_object,
    find_image,
    mask_objects,
    summarize_objects,
)
from seg.evaluation.panoptic_quality import read_panoptic_png
from seg.utils.atomic_io import atomic_open, atomic_write_json
from seg.utils.masks import mask_to_box
from seg.utils.validation import (
    check_dir,
    check_out_path,
    cli_input_errors,
    load_json_file,
    loads_json_line,
    read_image_file,
    require_keys,
    require_list,
)

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)


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
    args = parser.parse_args(argv)
    if args.ignore_value is not None and args.masks is None:
        parser.error('--ignore-value applies to --masks only (COCO panoptic has no ignore value)')
    if args.ignore_value is not None and not 1 <= args.ignore_value <= 65535:
        parser.error(f'--ignore-value must be a mask value in 1..65535 (0 is background), got '
                     f'{args.ignore_value}')
    if args.max_clicks < 1:
        parser.error(f'--max-clicks must be >= 1, got {args.max_clicks}')
    for flag, values in (('--noc-thrs', args.noc_thrs), ('--target-iou', [args.target_iou]),
                         ('--pred-thr', [args.pred_thr])):
        bad = [v for v in values if v is not None and not 0 < v <= 1]
        if bad:
            parser.error(f'{flag} takes values in (0, 1], got {bad[0]}')
    return args


def load_predictor(spec: str, kwargs: dict) -> InteractivePredictor:
    """Import ``MODULE:FACTORY`` and call the factory with ``kwargs``."""
    module_name, sep, attr = spec.partition(':')
    if not sep or not module_name or not attr:
        raise ValueError(f'--predictor must be MODULE:FACTORY, got {spec!r}')
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f'--predictor {spec!r}: cannot import {module_name!r} ({e})') from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f'--predictor {spec!r}: {module_name} has no callable {attr!r}')
    return factory(**kwargs)


def parse_predictor_kwargs(text: str) -> dict:
    kwargs = loads_json_line(text, '--predictor-kwargs')
    if not isinstance(kwargs, dict):
        raise ValueError(f'--predictor-kwargs must be a JSON object, got {text!r}')
    return kwargs


def list_sources(args: argparse.Namespace) -> list:
    """The mask PNGs (``--masks``) or the checked annotations (``--coco-panoptic``) to evaluate,
    each folder / file checked before any image is read."""
    check_dir(args.images, '--images folder')
    if args.masks is not None:
        masks = sorted(check_dir(args.masks, '--masks folder').glob('*.png'))
        if not masks:
            raise ValueError(f'--masks folder {args.masks} has no .png mask')
        return masks
    ann_json, png_dir = args.coco_panoptic
    check_dir(png_dir, '--coco-panoptic PNG folder')
    data = require_keys(load_json_file(ann_json, '--coco-panoptic json', expect=dict),
                        ('annotations', ), ann_json)
    anns = require_list(data, 'annotations', ann_json, allow_empty=False)
    for i, ann in enumerate(anns):
        name = f'{ann_json}: annotation {i}'
        require_keys(ann, ('image_id', 'file_name', 'segments_info'), name)
        for seg in require_list(ann, 'segments_info', name):
            require_keys(seg, ('id', ), f'{name} segment')
    return anns


def iter_images(args: argparse.Namespace, sources: list) -> Iterator[Tuple[Path, List[GTObject]]]:
    """(image path, its objects) for every mask PNG / annotation of ``list_sources``."""
    images = Path(args.images)
    if args.masks is not None:
        for mask_path in sources:
            yield find_image(images, mask_path.stem), mask_objects(mask_path, args.ignore_value)
        return
    png_dir = Path(args.coco_panoptic[1])
    for ann in sources:
        ids = read_panoptic_png(png_dir / ann['file_name'])
        objects = []
        for s in ann['segments_info']:
            gt = (ids == s['id']).astype(np.int64)
            if not gt.any():
                raise ValueError(f'{args.coco_panoptic[0]}: segment {s["id"]} of image '
                                 f'{ann["image_id"]} has no pixel in {png_dir / ann["file_name"]}')
            objects.append((f'{ann["image_id"]}:{s["id"]}', gt))
        yield find_image(images, Path(ann['file_name']).stem), objects


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
    for flag in ('out', 'plot'):
        if getattr(args, flag) is not None:
            check_out_path(getattr(args, flag), f'--{flag}')
    kwargs = parse_predictor_kwargs(args.predictor_kwargs)
    sources = list_sources(args)
    predictor = load_predictor(args.predictor, kwargs)
    results, per_object = [], []
    bar = ProgressBar(len(sources))
    for image_path, objects in iter_images(args, sources):
        image = read_image_file(image_path, 'image', mode='BGR', exif_orientation=True)
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
    if not results:
        raise ValueError(f'no object to evaluate: every mask of {args.masks or args.coco_panoptic[0]} '
                         'is background' + (' / ignore' if args.ignore_value is not None else ''))
    metrics = summarize_objects(results, args.noc_thrs, args.max_clicks)
    print()
    for key, value in metrics.items():
        print(f'{key:>12}: {value:.4f}' if isinstance(value, float) else f'{key:>12}: {value}')
    atomic_write_json({**metrics, 'per_object': per_object}, args.out)
    if args.plot:
        plot_miou_curve(metrics, args.plot)
    return metrics


if __name__ == '__main__':
    with cli_input_errors('eval_interactive.py'):
        main()
