"""YouTube-VIS 2019 read straight from its released json (no conversion step)."""
import os.path as osp
from typing import List, Optional, Sequence

import pycocotools.mask as mask_utils

from seg.datasets.annotation_checks import check_files_exist, load_ytvis_json
from seg.datasets.base_video_dataset import BaseVideoSegDataset
from seg.registry import DATASETS

# The 40 YouTube-VIS 2019 categories in the order of their json ids (1..40).
YTVIS_2019_CLASSES = (
    'person', 'giant_panda', 'lizard', 'parrot', 'skateboard', 'sedan', 'ape', 'dog', 'snake',
    'monkey', 'hand', 'rabbit', 'duck', 'cat', 'cow', 'fish', 'train', 'horse', 'turtle', 'bear',
    'motorbike', 'giraffe', 'leopard', 'fox', 'deer', 'owl', 'surfboard', 'airplane', 'truck',
    'zebra', 'tiger', 'elephant', 'snowboard', 'boat', 'shark', 'mouse', 'frog', 'eagle',
    'earless_seal', 'tennis_racket')


def _xyxy(box: Optional[Sequence[float]], rle: dict, height: int, width: int) -> List[float]:
    """An annotation's frame box as xyxy (what the YouTube-VIS metric reads from the ground
    truth): the json's xywh box, or the mask's tight box where the json has none."""
    if box is None:
        if isinstance(rle.get('counts'), list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(rle, height, width)
        box = mask_utils.toBbox(rle).tolist()
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]


@DATASETS.register_module()
class YouTubeVIS2019Dataset(BaseVideoSegDataset):
    """YouTube-VIS 2019 in the unified video format (see ``base_video_dataset``).

    Reads the json as released (``videos`` with ``file_names``; ``annotations`` with one RLE /
    box / area per frame, ``None`` where the object is not visible; ``categories``) with images
    under ``data_prefix['img']`` (e.g. ``train/JPEGImages/``). Category ids are mapped to
    contiguous labels by name through ``metainfo['classes']``; the instance id of an object is its
    annotation id, stable over the video. Each frame instance also carries its ``bbox`` (xyxy,
    from the json's ``bboxes`` or, where missing, the mask), which the YouTube-VIS metric reads.

    A json without ``annotations`` (the released valid/test sets) is accepted in ``test_mode``.
    The json is checked when the dataset is built (``annotation_checks.load_ytvis_json``: strict
    JSON, required keys, ids that resolve, RLE sizes equal to the video size, finite boxes), and
    so is the existence of every frame it names.
    """

    METAINFO = dict(classes=YTVIS_2019_CLASSES)

    def load_data_list(self) -> List[dict]:
        source = self.ann_file
        raw = load_ytvis_json(source)
        anns = raw.get('annotations')
        if not self.test_mode and not anns:
            raise ValueError(f'{source}: the annotation list is empty (or missing); a training '
                             'set needs annotations (use test_mode=True for the test split)')
        classes = list(self.metainfo['classes'])
        unknown = sorted({c['name'] for c in raw['categories']} - set(classes))
        if unknown:
            raise ValueError(f'{source}: categories {unknown} are not in metainfo["classes"]; pass '
                             'metainfo=dict(classes=...) matching the json')
        cat2label = {c['id']: classes.index(c['name']) for c in raw['categories']}
        per_video = {}
        for ann in anns or []:
            per_video.setdefault(ann['video_id'], []).append(ann)
        img_prefix = self.data_prefix.get('img', '')
        videos, img_id = [], 0
        for video in raw['videos']:
            files = video.get('file_names') or []
            name = osp.dirname(files[0]) if files else str(video['id'])
            frames = []
            for t, file_name in enumerate(files):
                frames.append(dict(img_path=osp.join(img_prefix, file_name), img_id=img_id,
                                   height=video['height'], width=video['width'], instances=[]))
                img_id += 1
            bad = False
            for ann in per_video.get(video['id'], []):
                segs = ann['segmentations']
                if len(segs) != len(files):
                    self.bad_data(f"{source}: annotation {ann['id']} of video {name!r} has "
                                  f'{len(segs)} segmentations for {len(files)} frames')
                    bad = True
                    break
                boxes = ann.get('bboxes') or [None] * len(segs)
                for frame, rle, box in zip(frames, segs, boxes):
                    if rle:
                        frame['instances'].append(dict(
                            instance_id=ann['id'], bbox_label=cat2label[ann['category_id']],
                            ignore_flag=int(bool(ann.get('iscrowd', 0))), mask=rle,
                            bbox=_xyxy(box, rle, video['height'], video['width'])))
            if not bad:
                try:
                    check_files_exist((f['img_path'] for f in frames), f'{source} video {name!r}')
                except FileNotFoundError as e:
                    self.bad_data(str(e), FileNotFoundError)
                    bad = True
            if not bad:
                videos.append(dict(video_id=video['id'], video_name=name, images=frames))
        return self.check_videos(videos, source)
