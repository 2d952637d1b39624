"""COCO (instances or panoptic) -> ``fastsam2_interactive.json``: sampled prompts per object.

Schema (version 1), documented in ``data/README.md``::

    {"format": "fastsam2-interactive-prompts", "version": 1, "seed": int,
     "source": {"ann_file": str, "kind": "instances" | "panoptic"},
     "sampler": {PromptSampler fields},
     "categories": [{"id", "name", "isthing"}],
     "prompts": [{"image_id", "file_name", "ann_id", "category_id", "isthing",
                  "points": [[x, y], ...], "point_labels": [1 | 0, ...],
                  "box": [x1, y1, x2, y2] | null, "text": str}, ...]}

Every object draws from ``np.random.default_rng([seed, image_id, ann_id])``, so the file does not
depend on the order objects are visited and one object's prompts do not shift another's.
"""
import dataclasses
import os.path as osp
import time
import warnings
from typing import Iterator, Optional, Tuple

import numpy as np
from mmengine.utils import ProgressBar
from pycocotools.coco import COCO

from seg.datasets.annotation_checks import load_coco_json
from seg.datasets.prompt_sampler import PromptSampler
from seg.evaluation.panoptic_quality import read_panoptic_png
from seg.utils.atomic_io import atomic_write_json
from seg.utils.validation import check_dir, load_json_file
from seg.utils.versioned_file import check_versioned

FORMAT = 'fastsam2-interactive-prompts'
VERSION = 1
# Offline prompts carry every kind; the training pipeline picks which ones to use.
OFFLINE_SAMPLER = PromptSampler(num_pos_points=(1, 3), num_neg_points=(0, 2), point_prob=1.0,
                                box_prob=1.0, text_prob=1.0)


def _instance_objects(ann_file: str, include_crowd: bool,
                      categories_file: Optional[str]) -> Tuple[list, list, Iterator]:
    coco = COCO()
    coco.dataset = load_coco_json(ann_file)
    coco.createIndex()
    # An instances json holds things only, unless it is COCO's panoptic "detection format",
    # which holds stuff too without an ``isthing`` key: ``categories_file`` supplies it.
    known = {}
    if categories_file:
        for c in load_json_file(categories_file, '--categories json', expect=list):
            if not isinstance(c, dict) or 'id' not in c:
                raise ValueError(f'{categories_file}: category {c!r:.100} has no "id"')
            known[c['id']] = c
    cats = [dict(id=c['id'], name=c['name'],
                 isthing=int(known.get(c['id'], c).get('isthing', 1)))
            for c in coco.loadCats(coco.getCatIds())]
    isthing = {c['id']: c['isthing'] for c in cats}
    images = [coco.imgs[i] for i in sorted(coco.getImgIds())]

    def objects(img: dict):
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img['id']])):
            if ann.get('iscrowd', 0) and not include_crowd:
                continue
            try:
                mask = coco.annToMask(ann).astype(bool)
            except (ValueError, TypeError, IndexError, KeyError) as e:  # raised by pycocotools
                raise ValueError(f"{ann_file}: annotation {ann['id']} has a segmentation that "
                                 f'cannot be decoded ({e!r:.200})') from None
            if 'height' in img and mask.shape != (img['height'], img['width']):
                raise ValueError(f"{ann_file}: annotation {ann['id']} decodes to a mask of "
                                 f"{mask.shape}, its image {img['file_name']} is "
                                 f"({img['height']}, {img['width']})")
            yield ann['id'], ann['category_id'], isthing[ann['category_id']], mask

    return cats, images, objects


def _panoptic_objects(ann_file: str, panoptic_dir: str, include_crowd: bool) -> Tuple[list, list,
                                                                                     Iterator]:
    raw = load_coco_json(ann_file, panoptic=True)
    check_dir(panoptic_dir, 'panoptic PNG folder')
    cats = [dict(id=c['id'], name=c['name'], isthing=int(c.get('isthing', 1)))
            for c in raw['categories']]
    isthing = {c['id']: c['isthing'] for c in cats}
    by_image = {a['image_id']: a for a in raw['annotations']}
    images = sorted(raw['images'], key=lambda im: im['id'])

    def objects(img: dict):
        ann = by_image.get(img['id'])
        if ann is None:
            raise ValueError(f"{ann_file}: image {img['file_name']} has no panoptic annotation")
        png_path = osp.join(panoptic_dir, ann['file_name'])
        ids = read_panoptic_png(png_path)
        if 'height' in img and ids.shape != (img['height'], img['width']):
            raise ValueError(f"panoptic PNG {png_path} is {ids.shape}, its image "
                             f"{img['file_name']} is ({img['height']}, {img['width']}) (H, W)")
        for seg in ann['segments_info']:
            if seg.get('iscrowd', 0) and not include_crowd:
                continue
            yield seg['id'], seg['category_id'], isthing[seg['category_id']], ids == seg['id']

    return cats, images, objects


def coco_to_interactive_prompts(ann_file: str,
                                out_file: str,
                                panoptic_dir: Optional[str] = None,
                                seed: int = 0,
                                sampler: PromptSampler = OFFLINE_SAMPLER,
                                include_crowd: bool = False,
                                on_bad_data: str = 'error',
                                categories_file: Optional[str] = None) -> dict:
    """Write the prompt file for every object of a COCO instances json (or a panoptic json with
    its PNG folder ``panoptic_dir``, covering stuff too). Returns a summary with the throughput.

    ``on_bad_data='skip'`` skips, with a warning, objects whose mask is empty instead of raising.
    ``categories_file`` (e.g. ``panoptic_coco_categories.json``) gives ``isthing`` to an instances
    json whose categories lack it (COCO's panoptic detection format).
    """
    if on_bad_data not in ('error', 'skip'):
        raise ValueError(f"on_bad_data must be 'error' or 'skip', got {on_bad_data!r}")
    start = time.perf_counter()
    if panoptic_dir is None:
        cats, images, objects = _instance_objects(ann_file, include_crowd, categories_file)
    else:
        cats, images, objects = _panoptic_objects(ann_file, panoptic_dir, include_crowd)
    if not images:
        raise ValueError(f'{ann_file}: the image list is empty, no prompt to write')
    names = {c['id']: c['name'] for c in cats}
    prompts = []
    bar = ProgressBar(len(images))
    for img in images:
        for ann_id, cat_id, isthing, mask in objects(img):
            if not mask.any():
                msg = f"{ann_file}: object {ann_id} of image {img['file_name']} has an empty mask"
                if on_bad_data == 'error':
                    raise ValueError(msg)
                warnings.warn(msg + ' (skipped)')
                continue
            rng = np.random.default_rng([seed, img['id'], ann_id])
            p = sampler(mask, rng, class_name=names[cat_id])
            prompts.append(dict(image_id=img['id'], file_name=img['file_name'], ann_id=ann_id,
                                category_id=cat_id, isthing=int(isthing),
                                points=p['points'].tolist(), point_labels=p['point_labels'].tolist(),
                                box=None if p['box'] is None else p['box'].tolist(), text=p['text']))
        bar.update()
    sampler_cfg = {k: list(v) if isinstance(v, tuple) else v
                   for k, v in dataclasses.asdict(sampler).items()}
    atomic_write_json(dict(format=FORMAT, version=VERSION, seed=seed,
                           source=dict(ann_file=osp.basename(ann_file),
                                       kind='instances' if panoptic_dir is None else 'panoptic'),
                           sampler=sampler_cfg, categories=cats, prompts=prompts),
                      out_file, indent=None)
    seconds = time.perf_counter() - start
    return dict(images=len(images), prompts=len(prompts), seconds=seconds,
                images_per_s=len(images) / max(seconds, 1e-9))


def load_interactive_prompts(path: str) -> dict:
    """Read a prompt file, checking its format and version; returns the parsed json."""
    return check_versioned(load_json_file(path, 'interactive prompt file'), path, FORMAT, VERSION,
                           'FastSAM2 interactive prompt file', 'coco_to_interactive_prompts.py')
