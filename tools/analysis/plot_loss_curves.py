"""Plot training loss curves of one or more mmengine work dirs (e.g. the stages of a run) as a PNG.

    python tools/analysis/plot_loss_curves.py WORK_DIR [WORK_DIR ...] --out curves.png \
        [--keys loss loss_distill_feat ...] [--labels stage1 stage2 ...]

Each work dir's newest ``<timestamp>/vis_data/scalars.json`` (one JSON record per logged iteration,
written by mmengine's ``LocalVisBackend``) is read. Work dirs are laid end to end on one iteration
axis, in the order given, with a dashed line at each boundary: staged training reads left to right.
Without ``--keys`` every logged key whose name contains ``loss`` gets its own panel.
"""
import argparse
import json
import math
from pathlib import Path
from typing import Dict, List, Sequence

import matplotlib

matplotlib.use('Agg')  # files only: no display on servers
import matplotlib.pyplot as plt  # noqa: E402

from seg.utils import atomic_open  # noqa: E402


def read_scalars(work_dir: Path) -> List[dict]:
    """The training records of the newest run in ``work_dir`` (records with an ``iter`` key)."""
    runs = sorted(work_dir.glob('*/vis_data/scalars.json'))
    if not runs:
        raise FileNotFoundError(f'{work_dir}: no */vis_data/scalars.json (is it an mmengine work dir '
                                'of a finished or running training?)')
    records = []
    with open(runs[-1]) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{runs[-1]}:{n}: not a JSON record ({e})') from None
            if 'iter' in rec:  # validation records carry no iteration
                records.append(rec)
    if not records:
        raise ValueError(f'{runs[-1]}: no training records (no line with an "iter" key)')
    return records


def plot_curves(runs: Sequence[List[dict]], labels: Sequence[str], keys: Sequence[str],
                out: Path) -> None:
    """One panel per key; runs are placed one after another on the iteration axis."""
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    offsets, start = [], 0
    for records in runs:
        offsets.append(start)
        start += max(r['iter'] for r in records)
    for ax, key in zip(axes.flat, keys):
        for i, (records, label, off) in enumerate(zip(runs, labels, offsets)):
            pts = [(off + r['iter'], r[key]) for r in records if key in r]
            if pts:
                xs, ys = zip(*pts)
                # one colour per run in every panel, also where an earlier run lacks the key
                ax.plot(xs, ys, label=label, linewidth=1.2, color=f'C{i % 10}')
        for off in offsets[1:]:
            ax.axvline(off, color='grey', linestyle='--', linewidth=0.8)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis('off')
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_open(out, 'wb') as f:
        fig.savefig(f, format='png', dpi=110)
    plt.close(fig)


def loss_keys(runs: Sequence[List[dict]]) -> List[str]:
    """Every logged key with ``loss`` in its name, total ``loss`` first, deep-supervision and
    routed-exit copies (``d0.``, ``exit1.``) left out to keep the figure readable."""
    keys: Dict[str, None] = {}
    for records in runs:
        for r in records:
            for k in r:
                if 'loss' in k and '.' not in k:
                    keys[k] = None
    return sorted(keys, key=lambda k: (k != 'loss', k))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dirs', nargs='+', type=Path)
    parser.add_argument('--out', type=Path, required=True, help='PNG file to write')
    parser.add_argument('--keys', nargs='+', help='logged keys to plot (default: every loss)')
    parser.add_argument('--labels', nargs='+', help='legend label per work dir (default: its name)')
    args = parser.parse_args()
    labels = args.labels or [d.name for d in args.work_dirs]
    if len(labels) != len(args.work_dirs):
        parser.error(f'{len(labels)} --labels for {len(args.work_dirs)} work dirs')
    runs = [read_scalars(d) for d in args.work_dirs]
    keys = args.keys or loss_keys(runs)
    missing = [k for k in keys if not any(k in r for recs in runs for r in recs)]
    if missing:
        parser.error(f'keys never logged: {missing}; logged: {loss_keys(runs)}')
    plot_curves(runs, labels, keys, args.out)
    print(f'loss curves of {len(runs)} run(s), {len(keys)} key(s) -> {args.out}')


if __name__ == '__main__':
    main()
