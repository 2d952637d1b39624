"""FastSAM2 demo: run one task on an image and write an overlay picture.

    python demo/demo.py IMAGE --task panoptic --config CFG [--checkpoint CKPT] [--out-dir DIR]
    python demo/demo.py IMAGE --task interactive_image --config CFG \\
        --points "320,200,1 100,80,0; 500,300,1" --boxes "250,150,400,300; -" --texts "person; -"

Prompts are in image pixels. Objects are separated by ';'; for one object, --points lists
"x,y,label" clicks (label 1 positive, 0 negative) separated by spaces, --boxes one "x1,y1,x2,y2",
--texts one text; '-' leaves that prompt kind out for the object.
"""
import argparse
import os.path as osp
import sys
import time
from typing import List, Optional

import mmcv
from PIL import Image

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from seg.apis import SegPredictor, draw_panoptic, draw_prompt_result  # noqa: E402
from seg.utils.atomic_io import atomic_save_png, atomic_write_json  # noqa: E402

TASKS = ('panoptic', 'interactive_image')


def parse_objects(text: Optional[str]) -> Optional[List[str]]:
    return None if text is None else [s.strip() for s in text.split(';')]


def parse_prompts(args: argparse.Namespace) -> dict:
    """Per-object prompt lists for ``SegPredictor.prompt`` from the CLI strings."""
    kinds = {k: parse_objects(getattr(args, k)) for k in ('points', 'boxes', 'texts')}
    counts = {k: len(v) for k, v in kinds.items() if v is not None}
    if not counts:
        raise SystemExit('interactive_image needs at least one of --points, --boxes, --texts')
    if len(set(counts.values())) != 1:
        raise SystemExit(f'each prompt kind must list the same number of objects (";"-separated): {counts}')
    out = {}
    if kinds['points']:
        points, labels = [], []
        for obj in kinds['points']:
            clicks = [] if obj == '-' else [c.split(',') for c in obj.split()]
            if any(len(c) != 3 for c in clicks):
                raise SystemExit(f'--points: each click is "x,y,label", got {obj!r}')
            points.append([[float(x), float(y)] for x, y, _ in clicks])
            labels.append([int(lab) for _, _, lab in clicks])
        out.update(points=points, point_labels=labels)
    if kinds['boxes']:
        boxes = []
        for obj in kinds['boxes']:
            vals = None if obj == '-' else [float(v) for v in obj.split(',')]
            if vals is not None and len(vals) != 4:
                raise SystemExit(f'--boxes: each box is "x1,y1,x2,y2", got {obj!r}')
            boxes.append(vals)
        out['boxes'] = boxes
    if kinds['texts']:
        out['texts'] = ['' if t == '-' else t for t in kinds['texts']]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image', help='image file')
    parser.add_argument('--task', choices=TASKS, default='panoptic')
    parser.add_argument('--config', default='configs/rapsam/rapsam_tiny_coco_panoptic.py')
    parser.add_argument('--checkpoint', help='local checkpoint (default: random weights, with a warning)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--image-size', type=int, default=1024, help='longer side fed to the network')
    parser.add_argument('--score-thr', type=float, help='panoptic: object mask threshold (config default)')
    parser.add_argument('--points')
    parser.add_argument('--boxes')
    parser.add_argument('--texts')
    parser.add_argument('--out-dir', default='outputs/demo')
    args = parser.parse_args()

    options = {} if args.score_thr is None else {'model.test_cfg.object_mask_thr': args.score_thr}
    predictor = SegPredictor.from_config(args.config, args.checkpoint, args.device, args.image_size,
                                         options)
    img = mmcv.imread(args.image) if osp.isfile(args.image) else None
    if img is None:
        raise SystemExit(f'cannot read image {args.image}')
    t0 = time.perf_counter()
    if args.task == 'panoptic':
        result = predictor.panoptic(img)
        overlay = draw_panoptic(img, result, predictor.class_names)
        pan = result.pred_panoptic_seg.sem_seg[0]
        summary = dict(num_segments=int(len(pan.unique())))
    else:
        result = predictor.prompt(img, **parse_prompts(args))
        overlay = draw_prompt_result(img, result, predictor.class_names)
        summary = dict(mask_areas=result.pred_instances.masks.flatten(1).sum(1).tolist(),
                       scores=result.pred_instances.scores.tolist())
    summary.update(task=args.task, image=args.image, seconds=round(time.perf_counter() - t0, 4))
    stem = osp.splitext(osp.basename(args.image))[0]
    out_png = osp.join(args.out_dir, f'{stem}_{args.task}.png')
    atomic_save_png(Image.fromarray(overlay), out_png)
    atomic_write_json(summary, osp.join(args.out_dir, f'{stem}_{args.task}.json'))
    print(f'{args.task}: wrote {out_png} ({summary})')


if __name__ == '__main__':
    main()
