"""Evenly spaced frames of DAVIS sequences as the image / mask folders that
``tools/evaluation/eval_interactive.py --images OUT/images --masks OUT/masks --ignore-value 128``
reads: ``<sequence>_<frame>.jpg`` (the JPEG as is) and ``<sequence>_<frame>.png`` (single-channel
object ids: a DAVIS-2016 binary mask becomes object 1; DAVIS-2017 keeps its ids and its void
label 255 becomes ``IGNORE`` = 128, the ignore value the click protocol skips).

    python tools/data/davis_click_eval_set.py ROOT --year 2016 --sequences camel goat \
        --frames-per-sequence 4 --out DIR

Run it once per DAVIS root with the same ``--out`` to pool sequences of both years.
"""
import argparse
import shutil
from pathlib import Path
from typing import List, Optional

import numpy as np
from PIL import Image

from seg.datasets.davis import scan_davis_sequence
from seg.evaluation.davis import VOID_ID, read_gt_ids
from seg.utils import atomic_open, atomic_save_png
from seg.utils.masks import read_davis_png

IGNORE = 128  # eval_interactive.py --ignore-value: not an object id of either DAVIS year


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='DAVIS root (JPEGImages/, Annotations/)')
    parser.add_argument('--year', choices=('2016', '2017'), required=True,
                        help='2016: binary 0/255 masks; 2017: palette object ids, 255 void')
    parser.add_argument('--sequences', nargs='+', required=True)
    parser.add_argument('--frames-per-sequence', type=int, default=4,
                        help='frames k * n // N for k < N of each n-frame sequence')
    parser.add_argument('--resolution', default='480p')
    parser.add_argument('--out', required=True)
    return parser.parse_args(argv)


def eval_mask(path: str, year: str) -> np.ndarray:
    """The frame's object ids as ``uint8``, void as ``IGNORE``."""
    if year == '2016':
        return read_gt_ids(path, binary_masks=True).astype(np.uint8)
    ids = read_davis_png(path)
    if ((ids >= IGNORE) & (ids != VOID_ID)).any():
        raise ValueError(f'{path}: object ids {np.unique(ids[ids >= IGNORE]).tolist()} collide with '
                         f'the ignore value {IGNORE}')
    return np.where(ids == VOID_ID, IGNORE, ids).astype(np.uint8)


def main(argv: Optional[List[str]] = None) -> List[str]:
    args = parse_args(argv)
    if args.frames_per_sequence < 1:
        raise ValueError(f'--frames-per-sequence must be >= 1, got {args.frames_per_sequence}')
    out = Path(args.out)
    (out / 'images').mkdir(parents=True, exist_ok=True)
    (out / 'masks').mkdir(parents=True, exist_ok=True)
    written = []
    for seq in args.sequences:
        frames = scan_davis_sequence(args.root, args.resolution, seq)
        n = len(frames)
        if n < args.frames_per_sequence:
            raise ValueError(f'{seq}: {n} frame(s), fewer than --frames-per-sequence '
                             f'{args.frames_per_sequence}')
        for k in range(args.frames_per_sequence):
            frame = frames[k * n // args.frames_per_sequence]
            if frame['seg_map_path'] is None:
                raise FileNotFoundError(f'{frame["img_path"]}: no annotation PNG beside it in '
                                        'Annotations/')
            name = f'{seq}_{Path(frame["img_path"]).stem}'
            with open(frame['img_path'], 'rb') as src, atomic_open(out / 'images' / f'{name}.jpg',
                                                                   'wb') as dst:
                shutil.copyfileobj(src, dst)
            atomic_save_png(Image.fromarray(eval_mask(frame['seg_map_path'], args.year), mode='L'),
                            out / 'masks' / f'{name}.png')
            written.append(name)
    print(f'{len(written)} frames -> {out}/images, {out}/masks')
    return written


if __name__ == '__main__':
    main()
