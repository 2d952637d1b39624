"""Image-mode masks of the fast path against the full computation (the speed issue's check).

For every object of every image (a folder of images and one of single-channel object-id PNGs with
the same stems, as ``tools/data/davis_click_eval_set.py`` writes them and
``tools/evaluation/eval_interactive.py --masks`` reads them; ``--ignore-value`` pixels are ignored
by the IoUs), one positive click on the
object's most interior pixel is decoded twice by the same checkpoint: with the config as it is
(token pruner, channels-last tower, binary upsampling) and with ``--full-options`` (default: no
pruner on the interactive route, NCHW tower). Prints the IoU of the two masks per object, their
mean and minimum, and each path's IoU to the ground truth; ``--out`` also writes them as json.

    python tools/analysis/fast_path_agreement.py configs/fastsam2/interactive_tiny_davis.py \
        work_dirs/interactive_tiny_davis/iter_1000.pth --images DIR/images --masks DIR/masks
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seg.apis.image_predictor import DEFAULT_IMAGE_SIZE, FastSAM2ImagePredictor  # noqa: E402
from seg.evaluation.interactive import find_image, interior_point, mask_iou, mask_objects  # noqa: E402
from seg.utils import atomic_write_json  # noqa: E402
from seg.utils.validation import check_dir, check_file, cli_input_errors, read_image_file  # noqa: E402

FULL_OPTIONS = {'model.backbone.channels_last': False,
                'model.task_router.rules.interactive.use_pruner': False}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--images', required=True, help='folder of <stem>.jpg / .png images')
    parser.add_argument('--masks', required=True, help='folder of <stem>.png object-id masks')
    parser.add_argument('--ignore-value', type=int, default=128, help='mask value that is no object')
    parser.add_argument('--image-size', type=int, default=DEFAULT_IMAGE_SIZE)
    parser.add_argument('--out', default=None, help='json with the per-object IoUs')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    check_file(args.config, '--config')
    check_file(args.checkpoint, '--checkpoint')
    masks = sorted(check_dir(args.masks, '--masks').glob('*.png'))
    images = check_dir(args.images, '--images')
    if not masks:
        raise ValueError(f'--masks: no .png files in {args.masks}')
    paths = {m: find_image(images, m.stem) for m in masks}  # every image exists before decoding
    fast = FastSAM2ImagePredictor.from_config(args.config, args.checkpoint, image_size=args.image_size)
    full = FastSAM2ImagePredictor.from_config(args.config, args.checkpoint, image_size=args.image_size,
                                              cfg_options=FULL_OPTIONS)
    rows = []
    for mask_path, image_path in paths.items():
        rgb = read_image_file(image_path, 'image')
        fast.set_image(rgb)
        full.set_image(rgb)
        for name, gt in mask_objects(mask_path, args.ignore_value):
            y, x = interior_point(gt)
            prompt = dict(point_coords=[[x, y]], point_labels=[1], multimask_output=False)
            a, b = fast.predict(**prompt)[0][0], full.predict(**prompt)[0][0]  # [1, H, W] -> [H, W]
            rows.append(dict(object=name, agreement=mask_iou(b, a), fast_gt=mask_iou(gt, a),
                             full_gt=mask_iou(gt, b)))
            print(f'{name}: fast vs full IoU {rows[-1]["agreement"]:.4f} '
                  f'(to GT: fast {rows[-1]["fast_gt"]:.3f}, full {rows[-1]["full_gt"]:.3f})')
    agreement = [r['agreement'] for r in rows]
    summary = dict(objects=len(rows), mean_agreement=float(np.mean(agreement)),
                   min_agreement=float(np.min(agreement)),
                   mean_fast_gt=float(np.mean([r['fast_gt'] for r in rows])),
                   mean_full_gt=float(np.mean([r['full_gt'] for r in rows])), rows=rows)
    print(f'{len(rows)} objects: fast vs full IoU mean {summary["mean_agreement"]:.4f}, min '
          f'{summary["min_agreement"]:.4f}; IoU to GT fast {summary["mean_fast_gt"]:.4f}, '
          f'full {summary["mean_full_gt"]:.4f}')
    if args.out:
        atomic_write_json(summary, args.out)
    return summary


if __name__ == '__main__':
    with cli_input_errors('fast_path_agreement.py'):
        main()
