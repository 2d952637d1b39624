"""YouTube-VIS 2019 -> ``ytvis_interactive_meta.pkl``: clips, key frames and key-frame prompts.

Schema (version 1), documented in ``data/README.md``::

    {'format': 'fastsam2-ytvis-interactive', 'version': 1, 'seed': int, 'ann_file': str,
     'clip_length': (min, max), 'stride': (min, max), 'num_extra_key_frames': int,
     'sampler': {PromptSampler fields},
     'categories': [{'id', 'name'}],
     'clips': [{'video_id': int, 'video_name': str, 'video_length': int,
                'frame_indices': [int, ...],          # frames of the video in the clip
                'file_names': [str, ...],
                'key_frames': [int, ...],             # positions in the clip (0-based)
                'prompts': {key_frame_position: [{'ann_id', 'category_id',
                                                  'points': float32 [P, 2],
                                                  'point_labels': int64 [P],
                                                  'box': float32 [4] | None,
                                                  'text': str}, ...]}}, ...]}

Clips tile each video (``tile_clips``); key frames are each object's first appearance in the clip
plus evenly spaced frames (``key_frame_indices``); prompts come from ``PromptSampler``, the same
sampler the online pipeline uses. Each clip draws from ``default_rng([seed, video_id])``.
"""
import dataclasses
import os.path as osp
import pickle
import time
from typing import Sequence

import numpy as np
from mmengine.utils import ProgressBar
from pycocotools import mask as mask_utils

from seg.datasets.annotation_checks import load_ytvis_json
from seg.datasets.clip_sampling import IntOrRange, as_range, key_frame_indices, tile_clips
from seg.datasets.converters.coco_interactive import OFFLINE_SAMPLER
from seg.datasets.prompt_sampler import PromptSampler
from seg.utils.atomic_io import atomic_open
from seg.utils.validation import check_file
from seg.utils.versioned_file import check_versioned

FORMAT = 'fastsam2-ytvis-interactive'
VERSION = 1


def _decode(rle: dict) -> np.ndarray:
    if isinstance(rle.get('counts'), list):  # uncompressed, as YouTube-VIS 2019 ships
        rle = mask_utils.frPyObjects(rle, *rle['size'])
    return mask_utils.decode(rle).astype(bool)


def ytvis_to_interactive_clips(ann_file: str,
                               out_file: str,
                               seed: int = 0,
                               clip_length: IntOrRange = (8, 16),
                               stride: IntOrRange = 1,
                               num_extra_key_frames: int = 2,
                               sampler: PromptSampler = OFFLINE_SAMPLER) -> dict:
    """Write the clip/prompt pickle for a YouTube-VIS json. Returns a summary with throughput."""
    start = time.perf_counter()
    raw = load_ytvis_json(ann_file)
    if not raw.get('annotations'):
        raise ValueError(f'{ann_file}: the annotation list is empty (or missing)')
    names = {c['id']: c['name'] for c in raw['categories']}
    per_video = {}
    for ann in raw['annotations']:
        per_video.setdefault(ann['video_id'], []).append(ann)
    clips = []
    bar = ProgressBar(len(raw['videos']))
    for video in raw['videos']:
        files = video.get('file_names') or []
        if not files:
            raise ValueError(f"{ann_file}: video {video['id']} has no frames")
        anns = per_video.get(video['id'], [])
        for ann in anns:
            if len(ann['segmentations']) != len(files):
                raise ValueError(f"{ann_file}: annotation {ann['id']} has "
                                 f"{len(ann['segmentations'])} segmentations for {len(files)} frames")
        rng = np.random.default_rng([seed, video['id']])
        for frames in tile_clips(len(files), clip_length, stride, rng):
            clips.append(_clip(video, files, anns, frames, names, rng, sampler,
                               num_extra_key_frames))
        bar.update()
    sampler_cfg = {k: list(v) if isinstance(v, tuple) else v
                   for k, v in dataclasses.asdict(sampler).items()}
    meta = dict(format=FORMAT, version=VERSION, seed=seed, ann_file=osp.basename(ann_file),
                clip_length=as_range(clip_length, 'clip_length'), stride=as_range(stride, 'stride'),
                num_extra_key_frames=num_extra_key_frames, sampler=sampler_cfg,
                categories=[dict(id=i, name=n) for i, n in names.items()], clips=clips)
    with atomic_open(out_file, 'wb') as f:
        pickle.dump(meta, f, protocol=4)
    seconds = time.perf_counter() - start
    return dict(videos=len(raw['videos']), clips=len(clips), seconds=seconds,
                videos_per_s=len(raw['videos']) / max(seconds, 1e-9))


def _clip(video: dict, files: Sequence[str], anns: list, frames: list, names: dict,
          rng: np.random.Generator, sampler: PromptSampler, num_extra: int) -> dict:
    presence = np.array([[ann['segmentations'][t] is not None for ann in anns] for t in frames],
                        dtype=bool).reshape(len(frames), len(anns))
    keys = key_frame_indices(presence, num_extra)
    prompts = {}
    for pos in keys:
        rows = []
        for k, ann in enumerate(anns):
            if not presence[pos, k]:
                continue
            mask = _decode(ann['segmentations'][frames[pos]])
            if not mask.any():
                continue
            p = sampler(mask, rng, class_name=names[ann['category_id']])
            rows.append(dict(ann_id=ann['id'], category_id=ann['category_id'], **p))
        prompts[pos] = rows
    return dict(video_id=video['id'], video_name=osp.dirname(files[0]), video_length=len(files),
                frame_indices=frames, file_names=[files[t] for t in frames], key_frames=keys,
                prompts=prompts)


def load_ytvis_interactive_meta(path: str) -> dict:
    """Read a clip/prompt pickle, checking its format and version."""
    with open(check_file(path, 'YouTube-VIS interactive meta file'), 'rb') as f:
        try:
            meta = pickle.load(f)
        except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError) as e:
            raise ValueError(f'{path} is not a readable pickle (truncated or another format?): '
                             f'{e!r:.200}') from None
    return check_versioned(meta, path, FORMAT, VERSION, 'FastSAM2 YouTube-VIS interactive meta file',
                           'ytvis_to_interactive_clips.py')
