"""A working directory in which the toy stage configs run: ``data/toy`` (the toy dataset and the
offline prompt / clip files their sources read), shared by the engine and tools tests."""
import argparse
from pathlib import Path
from typing import Sequence

from seg.datasets.converters import coco_to_interactive_prompts, ytvis_to_interactive_clips
from seg.datasets.toy_dataset import make_toy_dataset
from seg.engine.fastsam2_stages import build_parser
from tests.conftest import REPO_ROOT

TOY_STAGES = {n: REPO_ROOT / f'configs/fastsam2/toy/stage{n}_tiny_toy.py' for n in range(1, 6)}


def toy_workspace(tmp_path_factory) -> Path:
    """Create (once per session) and return a folder holding ``data/toy``."""
    root = tmp_path_factory.getbasetemp() / 'fastsam2_toy_workspace'
    toy = root / 'data' / 'toy'
    done = root / '.ready'
    if not done.exists():
        make_toy_dataset(toy, seed=0)
        coco = toy / 'coco' / 'annotations'
        coco_to_interactive_prompts(str(coco / 'panoptic_train2017.json'),
                                    str(toy / 'annotations' / 'fastsam2_interactive.json'),
                                    panoptic_dir=str(coco / 'panoptic_train2017'), seed=0)
        ytvis_to_interactive_clips(str(toy / 'youtube_vis_2019' / 'train.json'),
                                   str(toy / 'annotations' / 'ytvis_interactive_meta.pkl'),
                                   seed=0, clip_length=(2, 4))
        done.touch()
    return root


def launcher_args(argv: Sequence) -> argparse.Namespace:
    """``tools/train_fast_sam2.py``'s arguments (its parser)."""
    return build_parser().parse_args([str(a) for a in argv])


def short_run_options(iters: int, checkpoint_interval: int) -> list:
    """``--cfg-options`` for short runs: ``iters`` iterations, a checkpoint every
    ``checkpoint_interval``, a log line every iteration."""
    return ['--cfg-options', f'train_cfg.max_iters={iters}',
            f'default_hooks.checkpoint.interval={checkpoint_interval}',
            'default_hooks.logger.interval=1']
