"""DAVIS semi-supervised J&F of a results folder, computed as davis2017-evaluation does.

    python tools/evaluation/eval_davis.py --davis-root ROOT --results RES_DIR --set val \
        --year 2017 --out metrics.json [--davis2016]

ROOT has the DAVIS-2017 layout (``Annotations/<res>/<seq>/*.png``, ``ImageSets/<year>/<set>.txt``;
JPEGs are not needed). RES_DIR holds ``<seq>/<frame>.png`` object-id PNGs (palette or L mode) for
every annotated frame but the first and last. ``--davis2016`` reads binary 0/255 masks as object 1
(read as DAVIS-2017 masks, 255 would be void and the sequences would have no object). The JSON
holds the global numbers as fractions, ``per_object`` J/F means keyed ``<seq>_<id>`` and
``seconds_per_sequence``.
"""
import argparse
from typing import List, Optional

from seg.evaluation.davis import evaluate_davis, format_davis_table
from seg.utils.atomic_io import atomic_write_json
from seg.utils.validation import check_out_path, cli_input_errors


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--davis-root', required=True, help='DAVIS root (DAVIS-2017 layout)')
    parser.add_argument('--results', required=True, help='results folder: <seq>/<frame>.png')
    parser.add_argument('--set', default='val', help='image set name (ImageSets/<year>/<set>.txt)')
    parser.add_argument('--year', default='2017', help='image set year folder')
    parser.add_argument('--resolution', default='480p', help='Annotations sub-folder')
    parser.add_argument('--sequences', nargs='+', help='evaluate only these sequences')
    parser.add_argument('--davis2016', action='store_true',
                        help='masks are DAVIS-2016 binary PNGs: any non-zero value is object 1')
    parser.add_argument('--out', required=True, help='metrics JSON to write')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    check_out_path(args.out, '--out')
    result = evaluate_davis(args.davis_root, args.results, subset=args.set, year=args.year,
                            resolution=args.resolution, sequences=args.sequences,
                            binary_masks=args.davis2016)
    print()
    print(format_davis_table(result))
    seconds = result['seconds_per_sequence']
    print('\nEvaluation time per sequence (s): ' +
          ', '.join(f'{seq} {s:.2f}' for seq, s in seconds.items()) +
          f'; mean {sum(seconds.values()) / len(seconds):.2f}')
    atomic_write_json(result, args.out)
    print(f'Metrics written to {args.out}')
    return result


if __name__ == '__main__':
    with cli_input_errors('eval_davis.py'):
        main()
