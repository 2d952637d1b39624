"""Draw a tracked video as one picture: evenly spaced frames with the result masks overlaid.

    python tools/analysis/draw_vos_results.py FRAMES_DIR RESULTS_DIR --out strip.png [--num-frames 6]

``FRAMES_DIR`` holds the video's JPEG frames (a DAVIS ``JPEGImages/480p/<seq>`` folder) and
``RESULTS_DIR`` one palette PNG per frame with the same stem (``DAVISMetric`` / ``--outfile-dir``
output, or DAVIS ground truth). Only frames that have a result PNG are drawn.
"""
import argparse
from pathlib import Path

import mmcv
import numpy as np
from PIL import Image

from seg.apis.visualization import draw_vos_strip
from seg.evaluation.davis import read_davis_png
from seg.utils import atomic_save_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('frames_dir', type=Path)
    parser.add_argument('results_dir', type=Path)
    parser.add_argument('--out', type=Path, required=True, help='PNG to write')
    parser.add_argument('--num-frames', type=int, default=6)
    args = parser.parse_args()
    if args.num_frames < 1:
        parser.error('--num-frames must be >= 1')
    results = sorted(args.results_dir.glob('*.png'))
    if not results:
        parser.error(f'no result PNGs in {args.results_dir}')
    pairs = [(args.frames_dir / f'{p.stem}.jpg', p) for p in results]
    missing = [str(f) for f, _ in pairs if not f.is_file()]
    if missing:
        parser.error(f'{len(missing)} result PNG(s) have no frame, e.g. {missing[0]}')
    pick = np.unique(np.linspace(0, len(pairs) - 1, min(args.num_frames, len(pairs))).round()
                     .astype(int))
    frames = [mmcv.imread(str(pairs[i][0]), channel_order='rgb') for i in pick]
    id_maps = [read_davis_png(pairs[i][1]) for i in pick]
    strip = draw_vos_strip(frames, id_maps, titles=[f'frame {pairs[i][1].stem}' for i in pick])
    atomic_save_png(Image.fromarray(strip), args.out)
    print(f'{len(pick)} of {len(pairs)} frames -> {args.out}')


if __name__ == '__main__':
    main()
