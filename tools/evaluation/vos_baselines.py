"""Two training-free semi-supervised VOS baselines on a DAVIS root, scored with the project's J&F.

    python tools/evaluation/vos_baselines.py --davis-root ../shared/data/davis2016 --davis2016 \
        --sequences camel dance-twirl goat --out-dir work_dirs/vos_baselines

- ``copy``: the first frame's ground-truth mask is the prediction for every frame;
- ``flow``: the mask is carried frame to frame by classical optical flow: OpenCV Farneback flow
  from frame t to frame t-1 (for every pixel of frame t, where it was in frame t-1), and the
  previous prediction is sampled there (backward warp, nearest neighbour, so object ids stay ids).

Each method writes DAVIS palette PNGs to ``<out-dir>/<method>/<seq>/<frame>.png`` for every frame
and is evaluated by ``seg.evaluation.davis.evaluate_davis`` (the protocol of the official code);
``<out-dir>/metrics.json`` holds each method's global numbers, per-object means and timing.
"""
import argparse
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import cv2
import numpy as np

from seg.evaluation.davis import (
    GLOBAL_KEYS,
    evaluate_davis,
    format_davis_table,
    read_gt_ids,
    read_imageset,
    write_davis_png,
)
from seg.utils.atomic_io import atomic_write_json
from seg.utils.validation import check_dir, check_out_path, cli_input_errors, read_image_file

# Farneback parameters: a 3-level pyramid with a 15 px window follows DAVIS motion (up to
# ~30 px per frame at 480p) while staying smooth inside objects
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2,
                 flags=0)


def copy_first_mask(first_ids: np.ndarray, frames: List[np.ndarray]) -> List[np.ndarray]:
    """The first frame's object ids for every frame."""
    return [first_ids.copy() for _ in frames]


def backward_flow(frame: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Farneback flow ``[H, W, 2]`` from ``frame`` to ``previous`` (BGR images of equal size):
    pixel (x, y) of ``frame`` was at ``(x, y) + flow[y, x]`` in ``previous``."""
    return cv2.calcOpticalFlowFarneback(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY),
                                        cv2.cvtColor(previous, cv2.COLOR_BGR2GRAY), None,
                                        **FARNEBACK)


def warp_ids(ids: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward-warp an id map of the previous frame to the current one with ``backward_flow``;
    pixels whose source lies outside the frame become background."""
    h, w = ids.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(ids.astype(np.uint8), xs + flow[..., 0], ys + flow[..., 1],
                     interpolation=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=0)


def propagate_with_flow(first_ids: np.ndarray, frames: List[np.ndarray]) -> List[np.ndarray]:
    """Carry the first frame's ids through the video, each frame warped from the previous one."""
    out = [first_ids.copy()]
    for t in range(1, len(frames)):
        out.append(warp_ids(out[-1], backward_flow(frames[t], frames[t - 1])))
    return out


METHODS: Dict[str, Callable[[np.ndarray, List[np.ndarray]], List[np.ndarray]]] = {
    'copy': copy_first_mask, 'flow': propagate_with_flow}


def read_frames(img_dir: Path) -> List[np.ndarray]:
    """The sequence's JPEG frames in name order (BGR), all of one size."""
    paths = sorted(img_dir.glob('*.jpg'))
    if not paths:
        raise FileNotFoundError(f'no JPEG frame in {img_dir}')
    frames = []
    for p in paths:
        frames.append(read_image_file(p, 'frame', mode='BGR', exif_orientation=True))
        if frames[-1].shape != frames[0].shape:
            raise ValueError(f'frame {p} is {frames[-1].shape[:2]}, the first frame {paths[0]} '
                             f'{frames[0].shape[:2]}: a video has one frame size')
    return frames


def run_sequence(davis_root: Path, seq: str, resolution: str, binary_masks: bool,
                 out_dirs: Dict[str, Path]) -> None:
    """Every method on one sequence: palette PNGs for each JPEG frame."""
    img_dir = davis_root / 'JPEGImages' / resolution / seq
    names = [p.stem for p in sorted(img_dir.glob('*.jpg'))]
    frames = read_frames(img_dir)
    first_png = davis_root / 'Annotations' / resolution / seq / f'{names[0]}.png'
    first_ids = read_gt_ids(first_png, binary_masks)
    if first_ids.shape != frames[0].shape[:2]:
        raise ValueError(f'{first_png} is {first_ids.shape}, the frame {frames[0].shape[:2]}')
    if first_ids.max() == 0:
        raise ValueError(f'{first_png}: the first frame has no object to propagate'
                         + ('' if binary_masks else ' (DAVIS-2016 binary masks need --davis2016)'))
    for method, out_dir in out_dirs.items():
        for name, ids in zip(names, METHODS[method](first_ids, frames)):
            write_davis_png(ids, out_dir / seq / f'{name}.png')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--davis-root', required=True, help='DAVIS root (JPEGImages, Annotations)')
    parser.add_argument('--sequences', nargs='+',
                        help='sequences to run (default: ImageSets/<year>/<set>.txt)')
    parser.add_argument('--set', default='val', help='image set when --sequences is not given')
    parser.add_argument('--year', default='2017', help='image set year folder')
    parser.add_argument('--resolution', default='480p')
    parser.add_argument('--davis2016', action='store_true',
                        help='binary 0/255 masks (DAVIS 2016): any non-zero value is object 1')
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=list(METHODS))
    parser.add_argument('--out-dir', required=True,
                        help='results (<method>/<seq>/<frame>.png) and metrics.json go here')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    root = check_dir(args.davis_root, '--davis-root')
    out = check_out_path(args.out_dir, '--out-dir', folder=True)
    seqs = args.sequences or read_imageset(root, args.year, args.set)
    if len(set(seqs)) != len(seqs):
        raise ValueError(f'--sequences lists a name twice: {seqs}')
    out_dirs = {m: out / m for m in args.methods}
    start = time.perf_counter()
    for seq in seqs:
        run_sequence(root, seq, args.resolution, args.davis2016, out_dirs)
    print(f'baselines ran on {len(seqs)} sequence(s) in {time.perf_counter() - start:.1f} s')
    metrics = {}
    for method, out_dir in out_dirs.items():
        metrics[method] = evaluate_davis(root, out_dir, resolution=args.resolution,
                                         sequences=seqs, binary_masks=args.davis2016,
                                         progress=False)
        print(f'\n== {method} ({out_dir})\n{format_davis_table(metrics[method])}')
    print('\n' + f'{"method":<8}' + ' '.join(f'{k:>9}' for k in GLOBAL_KEYS))
    for method, m in metrics.items():
        print(f'{method:<8}' + ' '.join(f'{m[k]:9.4f}' for k in GLOBAL_KEYS))
    atomic_write_json(dict(sequences=list(seqs), **metrics), out / 'metrics.json')
    print(f'Metrics written to {out / "metrics.json"}')
    return metrics


if __name__ == '__main__':
    with cli_input_errors('vos_baselines.py'):
        main()
