"""Online interactive prompt generation (clicks, boxes, texts) for image and video pipelines."""
import hashlib
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData

from seg.datasets.clip_sampling import key_frame_indices
from seg.datasets.prompt_sampler import DEFAULT_TEMPLATES, PromptSampler
from seg.registry import TRANSFORMS
from seg.structures.prompts import build_prompts


@TRANSFORMS.register_module()
class GeneratePrompts(BaseTransform):
    """Sample interactive prompts for up to ``max_objects`` ground-truth objects.

    Place it AFTER every geometric transform (resize, crop, flip, pad), so the prompts are in the
    frame of the packed image, and before ``PackSegInputs``, which moves ``results['prompts']``
    to ``data_sample.prompts``.

    Candidate objects, in the order of the segmentation targets mmdet's MaskFormer-style heads
    build (``preprocess_panoptic_gt``), which is what ``gt_ids`` indexes:

    1. the thing instances of ``gt_masks`` whose ``gt_ignore_flags`` is False (the rows that
       ``PackDetInputs`` keeps in ``gt_instances``), in order;
    2. when ``num_thing_classes`` is set and ``gt_seg_map`` is present, one segment per stuff label
       present in ``gt_seg_map`` (``num_thing_classes <= label < 255``), in ascending label order.

    Objects whose mask is empty (e.g. cropped away) are skipped. Each prompt row comes from
    ``PromptSampler`` (the same sampler the offline converters use).

    Required keys: ``gt_masks``; optional ``gt_bboxes_labels``, ``gt_ignore_flags``,
    ``gt_seg_map``. Added key: ``prompts`` (``InstanceData``, see ``seg.structures.prompts``).

    Args:
        max_objects: at most this many objects are prompted per sample.
        num_thing_classes: number of thing classes; enables prompting stuff segments.
        class_names: names of all classes (things then stuff), indexed by label; enables texts.
        seed: if given, each call draws from ``np.random.default_rng(seed)`` (the same prompts for
            the same input, e.g. for validation); otherwise from numpy's global RNG state, which
            mmengine seeds per dataloader worker.
        cache_size: when > 0, keep the prompts of up to this many samples (per worker, least
            recently used dropped) and reuse them when the same image arrives with identical
            masks, i.e. fixed prompts per sample, without re-running the distance transforms.
            A sample that was augmented differently is a cache miss.
        num_pos_points, num_neg_points, point_prob, box_prob, box_jitter, text_prob, templates,
        interior_power, neg_band, neg_band_min: passed to ``PromptSampler``.
    """

    def __init__(self,
                 max_objects: int = 10,
                 num_thing_classes: Optional[int] = None,
                 class_names: Optional[Sequence[str]] = None,
                 seed: Optional[int] = None,
                 num_pos_points: Sequence[int] = (1, 3),
                 num_neg_points: Sequence[int] = (0, 2),
                 point_prob: float = 1.0,
                 box_prob: float = 0.5,
                 box_jitter: float = 0.1,
                 text_prob: float = 0.5,
                 templates: Sequence[str] = DEFAULT_TEMPLATES,
                 interior_power: float = 1.0,
                 neg_band: float = 0.1,
                 neg_band_min: int = 5,
                 cache_size: int = 0) -> None:
        if max_objects < 1:
            raise ValueError(f'GeneratePrompts: max_objects must be >= 1, got {max_objects}')
        self.max_objects = max_objects
        self.num_thing_classes = num_thing_classes
        self.class_names = tuple(class_names) if class_names is not None else None
        self.seed = seed
        if cache_size < 0:
            raise ValueError(f'GeneratePrompts: cache_size must be >= 0, got {cache_size}')
        self.cache_size = cache_size
        self._cache: 'OrderedDict[Tuple, InstanceData]' = OrderedDict()
        self.sampler = PromptSampler(
            num_pos_points=num_pos_points, num_neg_points=num_neg_points, point_prob=point_prob,
            box_prob=box_prob, box_jitter=box_jitter, text_prob=text_prob, templates=templates,
            interior_power=interior_power, neg_band=neg_band, neg_band_min=neg_band_min)

    def _rng(self) -> np.random.Generator:
        if self.seed is not None:
            return np.random.default_rng(self.seed)
        return np.random.default_rng(np.random.randint(0, 2**31 - 1))

    def _class_name(self, label: int) -> str:
        if not 0 <= label < len(self.class_names):
            raise ValueError(f'GeneratePrompts: label {label} is outside class_names '
                             f'({len(self.class_names)} names)')
        return self.class_names[label]

    def candidates(self, results: dict) -> List[Tuple[int, np.ndarray, int]]:
        """``(gt_id, mask, label)`` of every non-empty promptable object, in ``gt_id`` order."""
        if 'gt_masks' not in results:
            raise KeyError('GeneratePrompts needs results["gt_masks"]; load masks with '
                           'with_mask=True before it')
        masks = results['gt_masks'].to_ndarray().astype(bool)
        n = len(masks)
        labels = np.asarray(results.get('gt_bboxes_labels', np.full(n, -1)), dtype=np.int64)
        ignore = np.asarray(results.get('gt_ignore_flags', np.zeros(n, bool)), dtype=bool)
        if len(labels) != n or len(ignore) != n:
            raise ValueError(f'GeneratePrompts: {n} gt_masks but {len(labels)} labels and '
                             f'{len(ignore)} ignore flags')
        out = []
        for gt_id, row in enumerate(np.flatnonzero(~ignore)):
            if masks[row].any():
                out.append((gt_id, masks[row], int(labels[row])))
        seg_map = results.get('gt_seg_map')
        if self.num_thing_classes is not None and seg_map is not None:
            stuff = [v for v in np.unique(seg_map) if self.num_thing_classes <= v < 255]
            n_things = int((~ignore).sum())
            for k, label in enumerate(stuff):
                out.append((n_things + k, seg_map == label, int(label)))
        return out

    def transform(self, results: dict) -> dict:
        key = self._cache_key(results) if self.cache_size else None
        if key is not None and key in self._cache:
            self._cache.move_to_end(key)
            results['prompts'] = self._cache[key].clone()
            return results
        results['prompts'] = self.sample(results, self._rng())
        if key is not None:
            self._cache[key] = results['prompts'].clone()
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return results

    def sample(self, results: dict, rng: np.random.Generator) -> InstanceData:
        """Prompts for up to ``max_objects`` random candidates of one image."""
        cands = self.candidates(results)
        keep = rng.permutation(len(cands))[:self.max_objects]
        rows = [cands[i] for i in keep]
        prompts = []
        for _, mask, label in rows:
            name = self._class_name(label) if self.class_names is not None and label >= 0 else None
            prompts.append(self.sampler(mask, rng, class_name=name))
        return self.build(prompts, [r[0] for r in rows], texts=self.class_names is not None)

    @staticmethod
    def _cache_key(results: dict) -> Tuple:
        # The digest covers the masks and the stuff map as they are NOW (after augmentation), so a
        # sample seen again under another crop / flip / scale misses the cache instead of getting
        # prompts in the wrong frame.
        digest = hashlib.blake2b(digest_size=16)
        digest.update(np.ascontiguousarray(results['gt_masks'].to_ndarray()).tobytes())
        if results.get('gt_seg_map') is not None:
            digest.update(np.ascontiguousarray(results['gt_seg_map']).tobytes())
        return results.get('img_path'), results['gt_masks'].masks.shape, digest.hexdigest()

    @staticmethod
    def build(prompts: Sequence[dict], gt_ids: Sequence[int], texts: bool) -> InstanceData:
        """Turn ``PromptSampler`` outputs into the project's prompt ``InstanceData``."""
        box_valid = np.array([p['box'] is not None for p in prompts], dtype=bool)
        boxes = np.zeros((len(prompts), 4), np.float32)
        for i, p in enumerate(prompts):
            if p['box'] is not None:
                boxes[i] = p['box']
        out = build_prompts(points=[p['points'] for p in prompts],
                            point_labels=[p['point_labels'] for p in prompts],
                            bboxes=boxes, box_valid=box_valid,
                            texts=[p['text'] for p in prompts] if texts else None,
                            gt_ids=list(gt_ids))
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(max_objects={self.max_objects}, '
                f'num_thing_classes={self.num_thing_classes}, seed={self.seed}, '
                f'sampler={self.sampler})')


@TRANSFORMS.register_module()
class GenerateVideoPrompts(GeneratePrompts):
    """``GeneratePrompts`` for a clip (per-frame lists, after ``TransformBroadcaster``).

    ``results['prompts']`` becomes a list with one entry per frame: an ``InstanceData`` on the
    prompted frames (``gt_ids`` index that frame's ``gt_instances``), ``None`` elsewhere.

    Args:
        frames: which frames get prompts: ``'first'`` (VOS: the reference frame), ``'key'``
            (each object's first appearance plus ``num_extra_key_frames`` evenly spaced frames,
            ``key_frame_indices``) or ``'all'``.
        num_extra_key_frames: evenly spaced key frames added in ``'key'`` mode.
        Other args: ``GeneratePrompts`` (stuff prompting and caching do not apply to video: the
        video ``gt_seg_map`` is a void map, not semantics).
    """

    def __init__(self, frames: str = 'first', num_extra_key_frames: int = 2, **kwargs) -> None:
        if frames not in ('first', 'key', 'all'):
            raise ValueError(f"GenerateVideoPrompts: frames must be 'first', 'key' or 'all', got "
                             f'{frames!r}')
        if kwargs.get('num_thing_classes') is not None or kwargs.get('cache_size'):
            raise ValueError('GenerateVideoPrompts: num_thing_classes and cache_size do not apply '
                             'to video clips')
        super().__init__(**kwargs)
        self.frames = frames
        self.num_extra_key_frames = num_extra_key_frames

    def prompted_frames(self, results: dict) -> List[int]:
        """Indices of the clip frames that get prompts."""
        n = len(results['gt_masks'])
        if self.frames == 'first':
            return [0]
        if self.frames == 'all':
            return list(range(n))
        ids = [np.asarray(i) for i in results['gt_instances_ids']]
        all_ids = np.unique(np.concatenate(ids)) if n else np.zeros(0)
        presence = np.zeros((n, len(all_ids)), bool)
        for t in range(n):
            visible = results['gt_masks'][t].to_ndarray().reshape(len(ids[t]), -1).any(1)
            presence[t] = np.isin(all_ids, ids[t][visible])
        return key_frame_indices(presence, self.num_extra_key_frames)

    def transform(self, results: dict) -> dict:
        rng = self._rng()
        n = len(results['gt_masks'])
        chosen = set(self.prompted_frames(results))
        per_frame_keys = ('gt_masks', 'gt_bboxes_labels', 'gt_ignore_flags')
        prompts = []
        for t in range(n):
            if t not in chosen:
                prompts.append(None)
                continue
            frame = {k: results[k][t] for k in per_frame_keys if k in results}
            prompts.append(self.sample(frame, rng))
        results['prompts'] = prompts
        return results

    def __repr__(self) -> str:
        return f'{super().__repr__()[:-1]}, frames={self.frames!r})'
