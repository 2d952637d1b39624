"""Evaluate several checkpoints with several test configs in one process and print one table.

    python tools/evaluation/compare_checkpoints.py \
        --configs configs/fastsam2/toy/eval_panoptic_toy.py configs/fastsam2/toy/eval_vos_toy.py \
        --checkpoints untrained=work_dirs/x/untrained.pth trained=work_dirs/x/iter_40.pth \
        --work-dir work_dirs/compare --out compare.json [--table compare.md] [--keys PQ J&F-Mean ...]

Each (config, checkpoint) pair runs the config's test loop (mmengine ``Runner.test``) exactly as
``tools/test.py`` does; an evaluator's ``outfile_dir`` is moved to ``WORK_DIR/<config>/<name>/results``.
The table has a row per metric and a column per checkpoint; ``--out``
(written atomically) keeps every metric. One process: the libraries are imported once.
"""
import argparse
import os.path as osp
import zipfile
from typing import Dict, List, Optional, Sequence

from mmengine.runner import Runner

import seg  # noqa: F401  (registers the modules)
from seg.engine.runner_config import load_runner_config
from seg.utils import atomic_open, atomic_write_json
from seg.utils.validation import check_file, check_out_path, cli_input_errors


def parse_named(items: Sequence[str]) -> Dict[str, str]:
    """``name=path`` pairs -> ordered dict; every path must be a PyTorch checkpoint file (a zip
    archive, what ``torch.save`` writes): checked here, not after the first configs ran."""
    named = {}
    for item in items:
        name, sep, path = item.partition('=')
        if not sep or not name or not path:
            raise ValueError(f'--checkpoints takes NAME=PATH pairs, got {item!r}')
        if name in named:
            raise ValueError(f'--checkpoints: name {name!r} given twice')
        check_file(path, f'checkpoint {name!r}')
        if not zipfile.is_zipfile(path):
            raise ValueError(f'checkpoint {name!r} {path} is not a PyTorch checkpoint (not the zip '
                             'archive torch.save writes; truncated or another format?)')
        named[name] = path
    return named


def evaluate(configs: Sequence[str], checkpoints: Dict[str, str], work_dir: str
             ) -> Dict[str, Dict[str, float]]:
    """``{checkpoint name: {metric: value}}`` over every config's test loop."""
    results: Dict[str, Dict[str, float]] = {name: {} for name in checkpoints}
    for config in configs:
        tag = osp.splitext(osp.basename(config))[0]
        for name, path in checkpoints.items():
            run_dir = osp.join(work_dir, tag, name)
            cfg = load_runner_config(config, None, 'none', run_dir)
            cfg.load_from = path
            # result files (e.g. DAVIS PNGs) of each checkpoint go to its own run dir, not to the
            # one folder the config names, where the checkpoints would overwrite each other
            if 'outfile_dir' in cfg.test_evaluator:
                cfg.test_evaluator.outfile_dir = osp.join(run_dir, 'results')
            metrics = Runner.from_cfg(cfg).test()
            clash = set(metrics) & set(results[name])
            if clash:
                raise ValueError(f'{config}: metrics {sorted(clash)} were already reported by '
                                 'another config: give each config distinct metric names')
            results[name].update({k: float(v) for k, v in metrics.items()})
    return results


def format_table(results: Dict[str, Dict[str, float]], keys: Optional[List[str]] = None) -> str:
    """Markdown table: a row per metric (``keys`` or every metric), a column per checkpoint."""
    names = list(results)
    if keys is None:
        keys = list(dict.fromkeys(k for r in results.values() for k in r))
    missing = [k for k in keys if not any(k in r for r in results.values())]
    if missing:
        known = sorted({k for r in results.values() for k in r})
        raise KeyError(f'metrics {missing} were not reported; reported: {known}')
    lines = ['| metric | ' + ' | '.join(names) + ' |', '|---' * (len(names) + 1) + '|']
    for k in keys:
        cells = [f'{results[n][k]:.4f}' if k in results[n] else '-' for n in names]
        lines.append(f'| {k} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', required=True, help='test configs')
    parser.add_argument('--checkpoints', nargs='+', required=True, metavar='NAME=PATH')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--out', help='JSON file for every metric of every checkpoint')
    parser.add_argument('--table', help='also write the markdown table to this file')
    parser.add_argument('--keys', nargs='+', help='metrics to show in the table (default: all)')
    args = parser.parse_args(argv)
    for config in args.configs:
        if not osp.isfile(config):
            parser.error(f'config file not found: {config}')
    tags = [osp.splitext(osp.basename(c))[0] for c in args.configs]
    if len(set(tags)) != len(tags):
        # each config's results go to WORK_DIR/<config name>/: equal names would overwrite
        parser.error(f'--configs: two configs share a file name ({tags}); their results would '
                     'share a folder')
    check_out_path(args.work_dir, '--work-dir', folder=True)
    for flag in ('out', 'table'):
        if getattr(args, flag) is not None:
            check_out_path(getattr(args, flag), f'--{flag}')
    results = evaluate(args.configs, parse_named(args.checkpoints), args.work_dir)
    if args.out:
        atomic_write_json(results, args.out)
    table = format_table(results, args.keys)
    if args.table:
        with atomic_open(args.table, 'w') as f:
            f.write(table + '\n')
    print(table)


if __name__ == '__main__':
    with cli_input_errors('compare_checkpoints.py'):
        main()
