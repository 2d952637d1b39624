"""Checked loading of the released annotation jsons (COCO instances / panoptic, YouTube-VIS 2019).

Every loader and converter reading one of these files calls the functions here first, so a bad
file fails at load time with a ``ValueError`` naming the file, the record and the key (the policy
of ``seg.utils.validation``), not later with a bare ``KeyError`` inside pycocotools / mmdet or a
dataloader worker, nor silently (a NaN box dropped, an annotation of a missing image ignored):

- the json is parsed strictly (no ``NaN`` / ``Infinity``) and is an object with the format's lists;
- records are JSON objects with their required keys and unique integer ids;
- references resolve: an annotation's ``image_id`` / ``video_id`` / ``category_id`` exists;
- the local image / PNG files it names exist (``check_files_exist``, called by the datasets);
- boxes are ``[x, y, w, h]`` with finite values and ``w, h >= 0``; ``iscrowd`` is 0 or 1;
  image sizes are positive integers.
"""
import os.path as osp
from typing import Dict, Iterable, Optional, Sequence

from seg.utils.validation import (
    check_int,
    check_xywh_box,
    load_json_file,
    require_keys,
    require_list,
)


def index_records(records: list, keys: Sequence[str], name: str) -> Dict[int, dict]:
    """JSON objects holding ``keys`` (``'id'`` among them), keyed by their unique int id."""
    out: Dict[int, dict] = {}
    for i, record in enumerate(records):
        where = f'{name} {i}'
        require_keys(record, keys, where)
        record_id = check_int(record['id'], f'{where} "id"')
        if record_id in out:
            raise ValueError(f'{name}: id {record_id} is used twice')
        out[record_id] = record
    return out


def check_files_exist(paths: Iterable[Optional[str]], source: str) -> None:
    """Every local file an annotation file names (None: none) exists; remote paths (``s3://``)
    are left to the file backend. One stat per file, when the dataset is built."""
    missing = [p for p in paths if p and '://' not in p and not osp.isfile(p)]
    if missing:
        raise FileNotFoundError(f'{source}: {len(missing)} file(s) it names are missing, e.g. '
                                f'{missing[0]}')


def check_ref(value: object, known: Dict[int, dict], name: str, what: str) -> int:
    """An id (``name`` says where) that must be the id of one of the ``known`` ``what`` records."""
    ref = check_int(value, name)
    if ref not in known:
        raise ValueError(f'{name} is {ref}, which is not the id of any {what} '
                         f'(known: {sorted(known)[:10]}{"..." if len(known) > 10 else ""})')
    return ref


def _check_size(record: dict, where: str) -> None:
    for key in ('height', 'width'):
        check_int(record[key], f'{where} "{key}"', min_value=1)


def _check_crowd(record: dict, where: str) -> None:
    if record.get('iscrowd', 0) not in (0, 1):
        raise ValueError(f'{where} "iscrowd" must be 0 or 1, got {record["iscrowd"]!r}')


def load_coco_json(path: str, panoptic: bool = False, image_size: bool = False,
                   object_keys: Sequence[str] = (), category_keys: Sequence[str] = ()) -> dict:
    """A COCO instances json (``panoptic=False``: annotations with ``segmentation``) or a COCO
    panoptic json (one annotation per image with ``segments_info``), checked. ``image_size``:
    every image needs ``height`` / ``width``; ``object_keys`` / ``category_keys``: further keys
    every annotation (panoptic: segment) / category needs (what the caller reads)."""
    data = require_keys(load_json_file(path, 'COCO annotation file', expect=dict),
                        ('images', 'annotations', 'categories'), path)
    images = index_records(require_list(data, 'images', path), ('id', 'file_name'),
                           f'{path}: image')
    for image_id, image in images.items():
        if image_size or 'height' in image or 'width' in image:
            require_keys(image, ('height', 'width'), f'{path}: image {image_id}')
            _check_size(image, f'{path}: image {image_id}')
    cats = index_records(require_list(data, 'categories', path, allow_empty=False),
                         ('id', 'name', *category_keys), f'{path}: category')
    anns = require_list(data, 'annotations', path)
    if panoptic:
        seen = set()
        for i, ann in enumerate(anns):
            where = f'{path}: annotation {i}'
            require_keys(ann, ('image_id', 'file_name', 'segments_info'), where)
            image_id = check_ref(ann['image_id'], images, f'{where} "image_id"', 'image')
            if image_id in seen:
                raise ValueError(f'{path}: two annotations for image {image_id}')
            seen.add(image_id)
            _check_objects(require_list(ann, 'segments_info', where), cats,
                           f'{where} segment', object_keys, with_image=False)
    else:
        _check_objects(anns, cats, f'{path}: annotation', object_keys, images=images)
    return data


def _check_objects(objects: list, cats: Dict[int, dict], name: str, extra_keys: Sequence[str],
                   with_image: bool = True, images: Optional[Dict[int, dict]] = None) -> None:
    """COCO instance annotations / panoptic segments: ids, references, boxes, crowd flags, areas."""
    keys = ('id', 'category_id', *extra_keys) + (('image_id', 'segmentation') if with_image else ())
    for object_id, obj in index_records(objects, keys, name).items():
        where = f'{name} {object_id}'
        check_ref(obj['category_id'], cats, f'{where} "category_id"', 'category')
        if with_image:
            check_ref(obj['image_id'], images, f'{where} "image_id"', 'image')
        if obj.get('bbox') is not None:
            check_xywh_box(obj['bbox'], f'{where} "bbox"')
        area = obj.get('area', 0)
        if isinstance(area, bool) or not isinstance(area, (int, float)) or area < 0:
            raise ValueError(f'{where} "area" must be a number >= 0, got {area!r}')
        _check_crowd(obj, where)


def load_ytvis_json(path: str) -> dict:
    """A YouTube-VIS 2019 json, checked: videos with ``file_names`` and a size, categories, and
    annotations (optional: the released valid / test sets have none; whether a set needs them is
    the caller's rule) with segmentations (None where the object is absent) of their video's
    size and finite boxes."""
    data = require_keys(load_json_file(path, 'YouTube-VIS annotation file', expect=dict),
                        ('videos', 'categories'), path)
    videos = index_records(require_list(data, 'videos', path, allow_empty=False),
                           ('id', 'file_names', 'height', 'width'), f'{path}: video')
    for video_id, video in videos.items():
        _check_size(video, f'{path}: video {video_id}')
        files = require_list(video, 'file_names', f'{path}: video {video_id}')
        if not all(isinstance(f, str) and f for f in files):
            raise ValueError(f'{path}: video {video_id} "file_names" must be non-empty strings')
    cats = index_records(require_list(data, 'categories', path, allow_empty=False),
                         ('id', 'name'), f'{path}: category')
    if data.get('annotations') is None:
        return data
    anns = require_list(data, 'annotations', path)
    keys = ('id', 'video_id', 'category_id', 'segmentations')
    for ann_id, ann in index_records(anns, keys, f'{path}: annotation').items():
        where = f'{path}: annotation {ann_id}'
        video = videos[check_ref(ann['video_id'], videos, f'{where} "video_id"', 'video')]
        check_ref(ann['category_id'], cats, f'{where} "category_id"', 'category')
        _check_crowd(ann, where)
        segs = require_list(ann, 'segmentations', where)
        for t, rle in enumerate(segs):
            if rle is None:
                continue
            require_keys(rle, ('size', 'counts'), f'{where} segmentation {t}')
            if list(rle['size']) != [video['height'], video['width']]:
                raise ValueError(f'{where} segmentation {t} has size {rle["size"]}, its video '
                                 f'{video["id"]} is [{video["height"]}, {video["width"]}] (H, W)')
        boxes = ann.get('bboxes')
        if boxes is not None:
            # fewer boxes than segmentations would silently drop the last frames' objects
            if not isinstance(boxes, list) or len(boxes) < len(segs):
                raise ValueError(f'{where} "bboxes" must be a list of one box (or null) per '
                                 f'segmentation ({len(segs)}), got {boxes!r:.100}')
            for t, box in enumerate(boxes):
                if box is not None:
                    check_xywh_box(box, f'{where} "bboxes"[{t}]')
    return data
