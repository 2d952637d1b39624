"""Save a config's model at initialisation (the config's seed, no training) as a checkpoint.

    python tools/misc/save_init_checkpoint.py CONFIG OUT.pth [--cfg-options k=v ...]

The "untrained" reference of a training run: evaluated with the same tools as the trained
checkpoint (``tools/test.py``), it shows what training bought. Written atomically.
"""
import argparse

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import set_random_seed

import seg  # noqa: F401  (registers the modules)
from seg.registry import MODELS
from seg.utils import atomic_open


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('out', help='checkpoint file to write')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    # the Runner seeds before building the model: the same seed gives the same initial weights
    seed = cfg.get('randomness', {}).get('seed')
    if seed is not None:
        set_random_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    # a trained checkpoint carries the class-name text embeddings; the reference must as well
    model._ensure_class_embeds()
    with atomic_open(args.out, 'wb') as f:
        torch.save({'state_dict': model.state_dict(), 'meta': dict(config=args.config, iter=0)}, f)
    print(f'initial weights of {args.config} (seed {seed}) -> {args.out}')


if __name__ == '__main__':
    main()
