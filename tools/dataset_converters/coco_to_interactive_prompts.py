"""COCO instances / panoptic -> data/annotations/fastsam2_interactive.json (sampled prompts).

    # instances (things)
    python tools/dataset_converters/coco_to_interactive_prompts.py \
        data/coco/annotations/instances_train2017.json data/annotations/fastsam2_interactive.json
    # panoptic (things and stuff)
    python tools/dataset_converters/coco_to_interactive_prompts.py \
        data/coco/annotations/panoptic_train2017.json data/annotations/fastsam2_interactive.json \
        --panoptic-dir data/coco/annotations/panoptic_train2017
"""
import argparse
from typing import List, Optional

from seg.datasets.converters import coco_to_interactive_prompts
from seg.datasets.converters.coco_interactive import OFFLINE_SAMPLER
from seg.datasets.prompt_sampler import PromptSampler
from seg.utils.validation import check_out_path, cli_input_errors


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('ann_file', help='COCO instances json, or panoptic json with --panoptic-dir')
    parser.add_argument('out_file')
    parser.add_argument('--panoptic-dir', default=None, help='folder of the panoptic PNGs')
    parser.add_argument('--categories', default=None,
                        help='categories json with isthing (for COCO panoptic detection format)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-pos', type=int, nargs=2, default=OFFLINE_SAMPLER.num_pos_points,
                        metavar=('MIN', 'MAX'))
    parser.add_argument('--num-neg', type=int, nargs=2, default=OFFLINE_SAMPLER.num_neg_points,
                        metavar=('MIN', 'MAX'))
    parser.add_argument('--box-jitter', type=float, default=OFFLINE_SAMPLER.box_jitter)
    parser.add_argument('--include-crowd', action='store_true')
    parser.add_argument('--skip-bad', action='store_true', help='skip empty masks with a warning')
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f'--seed must be >= 0, got {args.seed}')
    check_out_path(args.out_file, 'out_file')
    sampler = PromptSampler(num_pos_points=tuple(args.num_pos), num_neg_points=tuple(args.num_neg),
                            point_prob=1.0, box_prob=1.0, text_prob=1.0, box_jitter=args.box_jitter)
    summary = coco_to_interactive_prompts(args.ann_file, args.out_file,
                                          panoptic_dir=args.panoptic_dir, seed=args.seed,
                                          sampler=sampler, include_crowd=args.include_crowd,
                                          on_bad_data='skip' if args.skip_bad else 'error',
                                          categories_file=args.categories)
    print(f"\nwrote {summary['prompts']} prompts for {summary['images']} images to "
          f"{args.out_file} ({summary['images_per_s']:.1f} images/s)")
    return summary


if __name__ == '__main__':
    with cli_input_errors('coco_to_interactive_prompts.py'):
        main()
