"""On-disk cache of the class-name text embeddings (the classifier weights of ``RapSAM``).

Embedding every templated class name with the CLIP text tower takes minutes on a CPU (238 s for
the R50 config's 133 classes on a loaded 2-core machine) and gives the same result for the same
tower and names, so it is done once and kept in
``$FASTSAM2_CACHE_DIR/text_embeds/<key>.pt`` (default ``~/.cache/fastsam2``). The key hashes the
tower's name, its weights (a randomly initialised tower is a different tower), the class names
and the templates: any change there is a new entry, never a stale hit. Files are written
atomically; an unreadable or mismatching one is recomputed with a warning. At most
``MAX_ENTRIES`` files are kept (the oldest go), so random-weight builds cannot fill the disk.
"""
import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

import torch
from mmengine.logging import print_log
from torch import nn

from seg.utils.atomic_io import atomic_open

CACHE_ENV = 'FASTSAM2_CACHE_DIR'
MAX_ENTRIES = 64


def cache_dir() -> Path:
    """``$FASTSAM2_CACHE_DIR/text_embeds`` (default ``~/.cache/fastsam2/text_embeds``)."""
    root = os.environ.get(CACHE_ENV) or Path.home() / '.cache' / 'fastsam2'
    return Path(root) / 'text_embeds'


def tower_fingerprint(tower: nn.Module) -> str:
    """sha256 of a module's state dict (names, dtypes, shapes, bytes), in key order."""
    digest = hashlib.sha256()
    for name, value in sorted(tower.state_dict().items()):
        value = value.detach().cpu().contiguous()
        digest.update(f'{name}|{value.dtype}|{tuple(value.shape)}'.encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cache_key(tower_name: str, fingerprint: str, class_names: Sequence[str],
              templates: Sequence[str]) -> str:
    """The file name stem of one (tower, class list, templates) entry."""
    text = json.dumps([tower_name, fingerprint, list(class_names), list(templates)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cached_class_embeddings(tower: nn.Module, tower_name: str, class_names: Sequence[str],
                            templates: Sequence[str], compute: Callable[[], torch.Tensor]
                            ) -> torch.Tensor:
    """The ``[len(class_names), D]`` embeddings from the cache, else ``compute()`` (with a
    progress message) and stored.

    Args:
        tower: the text tower whose weights the embeddings depend on (fingerprinted).
        tower_name: its architecture name (part of the key).
        class_names / templates: what ``compute`` embeds (part of the key).
        compute: embeds the templated class names with ``tower``.
    """
    start = time.perf_counter()
    key = cache_key(tower_name, tower_fingerprint(tower), class_names, templates)
    path = cache_dir() / f'{key}.pt'
    device = next(tower.parameters(), torch.empty(0)).device
    if path.is_file():
        try:
            entry = torch.load(path, map_location='cpu', weights_only=True)
            embeds = entry['embeds']
            if list(entry['class_names']) != list(class_names) or embeds.dim() != 2 \
                    or embeds.shape[0] != len(class_names):
                raise ValueError(f'it holds {tuple(embeds.shape)} embeddings of other class names')
            print_log(f'class-name text embeddings: {len(class_names)} classes loaded from the '
                      f'cache {path} ({time.perf_counter() - start:.2f} s)', logger='current')
            return embeds.to(device)
        except Exception as err:  # a torn or foreign file: recompute, do not fail the build
            warnings.warn(f'text embedding cache {path} is unreadable ({type(err).__name__}: '
                          f'{err}); recomputing it')
    print_log(f'computing the CLIP text embeddings of {len(class_names)} class names x '
              f'{len(templates)} templates (once: cached as {path})', logger='current')
    embeds = compute()
    with atomic_open(path, 'wb') as f:
        torch.save(dict(embeds=embeds.detach().cpu(), class_names=list(class_names),
                        templates=list(templates), tower=tower_name), f)
    _prune(path.parent)
    print_log(f'class-name text embeddings: {len(class_names)} classes computed in '
              f'{time.perf_counter() - start:.1f} s', logger='current')
    return embeds


def _prune(folder: Path) -> None:
    """Keep the ``MAX_ENTRIES`` newest entries."""
    entries = sorted(folder.glob('*.pt'), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[MAX_ENTRIES:]:
        old.unlink(missing_ok=True)
