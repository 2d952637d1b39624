"""DAVIS folders -> an index file in the unified video format (read by ``DAVISDataset``).

Schema (version 1), documented in ``data/README.md``::

    {"format": "fastsam2-davis-index", "version": 1, "year": "2016" | "2017", "split": str | null,
     "resolution": "480p",
     "data_list": [{"video_id", "video_name", "video_length",
                    "images": [{"img_path", "seg_map_path" | null (relative to the DAVIS root),
                                "img_id", "frame_id", "mask_format": "binary" | "palette",
                                "object_ids": [int, ...], "void_pixels": int}, ...]}, ...]}

Building the index reads every annotation PNG once, so a broken mask fails here, naming the
file, instead of inside a dataloader worker during training.
"""
import os.path as osp
import time
from typing import Optional

from mmengine.utils import ProgressBar

from seg.datasets.davis import INDEX_FORMAT, INDEX_VERSION, DAVISDataset
from seg.datasets.transforms.loading import read_davis_objects
from seg.utils.atomic_io import atomic_write_json


def davis_to_index(data_root: str, out_file: str, year: str = '2017',
                   split: Optional[str] = 'train', resolution: str = '480p',
                   on_bad_data: str = 'error') -> dict:
    """Scan a DAVIS root and write its index file. Returns a summary with the throughput."""
    start = time.perf_counter()
    dataset = DAVISDataset(data_root=data_root, year=year, split=split, resolution=resolution,
                           on_bad_data=on_bad_data, pipeline=[], serialize_data=False)
    videos = dataset.data_list
    frames = sum(v['video_length'] for v in videos)
    bar = ProgressBar(frames)
    for video in videos:
        for frame in video['images']:
            if frame['seg_map_path'] is not None:
                ids, _, void = read_davis_objects(frame['seg_map_path'], frame['mask_format'])
                frame['object_ids'], frame['void_pixels'] = ids, int((void == 255).sum())
                frame['seg_map_path'] = osp.relpath(frame['seg_map_path'], data_root)
            else:
                frame['object_ids'], frame['void_pixels'] = [], 0
            frame['img_path'] = osp.relpath(frame['img_path'], data_root)
            bar.update()
    atomic_write_json(dict(format=INDEX_FORMAT, version=INDEX_VERSION, year=str(year), split=split,
                           resolution=resolution, data_list=videos), out_file, indent=None)
    seconds = time.perf_counter() - start
    return dict(videos=len(videos), frames=frames, seconds=seconds,
                frames_per_s=frames / max(seconds, 1e-9))
