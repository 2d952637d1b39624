"""DAVIS 2016 / 2017 folders -> an index file in the unified video format.

    python tools/dataset_converters/davis_to_index.py data/DAVIS data/DAVIS/davis2017_train.json \
        --year 2017 --split train
"""
import argparse
from typing import List, Optional

from seg.datasets.converters import davis_to_index
from seg.utils.validation import check_dir, check_out_path, cli_input_errors


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data_root', help='DAVIS root (JPEGImages/, Annotations/, ImageSets/)')
    parser.add_argument('out_file')
    parser.add_argument('--year', choices=('2016', '2017'), default='2017')
    parser.add_argument('--split', default='train',
                        help='ImageSets/<year>/<split>.txt; "all" uses every sequence folder')
    parser.add_argument('--resolution', default='480p')
    parser.add_argument('--skip-bad', action='store_true',
                        help='skip sequences without frames or annotations, with a warning')
    args = parser.parse_args(argv)
    check_dir(args.data_root, 'DAVIS root')
    check_out_path(args.out_file, 'out_file')
    summary = davis_to_index(args.data_root, args.out_file, year=args.year,
                             split=None if args.split == 'all' else args.split,
                             resolution=args.resolution,
                             on_bad_data='skip' if args.skip_bad else 'error')
    print(f"\nindexed {summary['frames']} frames of {summary['videos']} sequences into "
          f"{args.out_file} ({summary['frames_per_s']:.1f} frames/s)")
    return summary


if __name__ == '__main__':
    with cli_input_errors('davis_to_index.py'):
        main()
