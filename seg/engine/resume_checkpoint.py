"""The checkpoint ``--resume auto`` resumes from: the newest valid one in the work dir.

mmengine resumes from the file named in ``<work_dir>/last_checkpoint``. A kill between writing
``iter_N.pth`` and updating ``last_checkpoint`` leaves it stale; an empty or missing file, or one
naming a deleted or corrupt checkpoint, makes the resume fail although valid checkpoints exist.
Here every ``iter_*.pth`` / ``epoch_*.pth`` beside it is a candidate, newest first.
"""
import logging
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional

from mmengine.logging import print_log

LAST_CHECKPOINT = 'last_checkpoint'  # the file CheckpointHook keeps up to date
CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from, or ``None`` when it reads as a whole torch checkpoint
    (a zip archive whose records all match their CRC: a truncated or damaged write fails)."""
    if not osp.isfile(path):
        return 'missing'
    if not zipfile.is_zipfile(path):
        return 'not a torch checkpoint archive (empty, truncated or corrupt)'
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        return f'unreadable ({err})'
    return None if damaged is None else f'corrupt (CRC mismatch in record {damaged})'


def _progress(path: str) -> int:
    match = CHECKPOINT_NAME.match(osp.basename(path))
    return int(match.group(1)) if match else -1


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest checkpoint of ``work_dir`` that can be resumed from (``None``: there is none).

    Candidates are the one ``last_checkpoint`` names and every ``iter_N.pth`` / ``epoch_N.pth``
    in its folder and in ``work_dir``, newest (modification time, then N) first; unreadable ones
    are skipped with a warning saying why.
    """
    pointer = osp.join(work_dir, LAST_CHECKPOINT)
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
        if named is None:
            print_log(f'--resume auto: {pointer} is empty; looking for checkpoints in {work_dir}',
                      logger='current', level=logging.WARNING)
    folders = {osp.abspath(work_dir)}
    if named is not None:
        folders.add(osp.dirname(osp.abspath(named)))
    candidates = {osp.join(folder, name) for folder in folders if osp.isdir(folder)
                  for name in os.listdir(folder) if CHECKPOINT_NAME.match(name)}
    if named is not None:
        candidates.add(osp.abspath(named))
    existing = [p for p in candidates if osp.isfile(p)]
    ordered: List[str] = sorted(existing, key=lambda p: (osp.getmtime(p), _progress(p)), reverse=True)
    problems = {}
    for path in ordered + sorted(set(candidates) - set(existing)):
        problems[path] = checkpoint_problem(path)
        if problems[path] is None:
            if named is not None and path != osp.abspath(named):
                why = problems.get(osp.abspath(named)) or 'older'
                print_log(f'--resume auto: {pointer} names {named} ({why}); resuming from the '
                          f'newest valid checkpoint, {path}', logger='current', level=logging.WARNING)
            return path
        print_log(f'--resume auto: skipping {path}: {problems[path]}', logger='current',
                  level=logging.WARNING)
    return None
