"""COCO panoptic quality (PQ / SQ / RQ) of a prediction, computed as panopticapi's pq_compute does.

    python tools/evaluation/eval_coco_panoptic.py --gt-json J --gt-folder D --pred-json PJ \
        --pred-folder PD [--categories C] --out metrics.json

The prediction is COCO panoptic format (json ``annotations`` with ``segments_info`` + RGB PNGs),
as ``PanopticQualityMetric(outfile_prefix=...)`` writes it. ``--categories`` (a json list of
categories, e.g. panoptic_coco_categories.json) replaces the GT json's ``categories``. The JSON
holds ``{"All", "Things", "Stuff"}`` each ``{"pq", "sq", "rq", "n"}`` as fractions, plus
``per_category``.
"""
import argparse
from typing import List, Optional

from seg.evaluation.panoptic_quality import pq_compute
from seg.utils.atomic_io import atomic_write_json
from seg.utils.validation import check_out_path, cli_input_errors


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--gt-json', required=True, help='COCO panoptic GT json')
    parser.add_argument('--gt-folder', required=True, help='folder of the GT PNGs')
    parser.add_argument('--pred-json', required=True, help='prediction json (COCO panoptic)')
    parser.add_argument('--pred-folder', required=True, help='folder of the prediction PNGs')
    parser.add_argument('--categories', help='categories json overriding the GT json categories')
    parser.add_argument('--out', required=True, help='metrics JSON to write')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    check_out_path(args.out, '--out')
    result = pq_compute(args.gt_json, args.gt_folder, args.pred_json, args.pred_folder,
                        categories=args.categories)
    print(f'\n{"":8}{"PQ":>8}{"SQ":>8}{"RQ":>8}{"N":>6}')
    for name in ('All', 'Things', 'Stuff'):
        s = result[name]
        print(f'{name:8}{s["pq"]:8.4f}{s["sq"]:8.4f}{s["rq"]:8.4f}{s["n"]:6d}')
    atomic_write_json(result, args.out)
    print(f'Metrics written to {args.out}')
    return result


if __name__ == '__main__':
    with cli_input_errors('eval_coco_panoptic.py'):
        main()
