"""GeneratePrompts: object choice, gt_ids, coordinates in the packed frame, determinism."""
import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from seg.datasets.prompt_sampler import category_words
from seg.datasets.transforms.prompt_generation import GeneratePrompts
from seg.registry import DATASETS

CLASSES = ('person', 'dog', 'sky', 'grass')  # 2 things, 2 stuff


def _results() -> dict:
    h, w = 40, 50
    masks = np.zeros((4, h, w), np.uint8)
    masks[0, 5:15, 5:15] = 1      # person
    masks[1, 20:30, 30:45] = 1    # dog, crowd -> ignored
    masks[2] = 0                  # person cropped away
    masks[3, 25:38, 2:12] = 1     # dog
    seg = np.full((h, w), 255, np.uint8)
    seg[:4] = 2                   # sky
    seg[38:] = 3                  # grass
    return dict(gt_masks=BitmapMasks(masks, h, w),
                gt_bboxes=HorizontalBoxes(torch.zeros(4, 4)),
                gt_bboxes_labels=np.array([0, 1, 0, 1]),
                gt_ignore_flags=np.array([False, True, False, False]),
                gt_seg_map=seg)


def test_candidates_follow_the_panoptic_target_order():
    cands = GeneratePrompts(num_thing_classes=2).candidates(_results())
    # kept things are rows 0, 2, 3 -> gt_ids 0, 1, 2; row 2 (gt_id 1) is empty and skipped;
    # stuff labels 2, 3 follow as gt_ids 3, 4
    assert [(g, lab) for g, _, lab in cands] == [(0, 0), (2, 1), (3, 2), (4, 3)]
    assert [int(m.sum()) for _, m, _ in cands] == [100, 130, 200, 100]
    # without num_thing_classes, stuff is not prompted
    assert [g for g, _, _ in GeneratePrompts().candidates(_results())] == [0, 2]


def test_prompts_hit_their_gt_objects_and_texts_name_them():
    gen = GeneratePrompts(max_objects=10, num_thing_classes=2, class_names=CLASSES, seed=0,
                          box_prob=1.0, text_prob=1.0, num_neg_points=(2, 2))
    res = gen(_results())
    p = res['prompts']
    assert sorted(p.gt_ids.tolist()) == [0, 2, 3, 4]
    target = {g: (m, lab) for g, m, lab in gen.candidates(_results())}
    for i, gid in enumerate(p.gt_ids.tolist()):
        mask, label = target[gid]
        pts = p.points[i].long()
        lab = p.point_labels[i]
        assert mask[pts[lab == 1, 1], pts[lab == 1, 0]].all()
        assert not mask[pts[lab == 0, 1], pts[lab == 0, 0]].any()
        ys, xs = np.nonzero(mask)
        x1, y1, x2, y2 = p.bboxes[i].tolist()
        assert p.box_valid[i] and x1 <= xs.min() and y1 <= ys.min() and x2 >= xs.max() + 1
        assert y2 >= ys.max() + 1
        assert any(w in p.texts[i] for w in category_words(CLASSES[label]))


def test_max_objects_and_box_validity():
    res = GeneratePrompts(max_objects=2, num_thing_classes=2, seed=1, box_prob=0.0)(_results())
    p = res['prompts']
    assert len(p) == 2 and len(set(p.gt_ids.tolist())) == 2
    assert not p.box_valid.any() and (p.bboxes == 0).all()
    assert not hasattr(p, 'texts')  # no class names -> no text prompts


def test_no_objects_gives_empty_prompts():
    res = _results()
    res['gt_masks'] = BitmapMasks(np.zeros((4, 40, 50), np.uint8), 40, 50)
    p = GeneratePrompts(seed=0)(res)['prompts']
    assert len(p) == 0 and p.points.shape == (0, 0, 2)


def test_determinism_from_seed_and_from_global_state():
    def draw(gen):
        return gen(_results())['prompts']

    a, b = draw(GeneratePrompts(seed=3)), draw(GeneratePrompts(seed=3))
    assert torch.equal(a.points, b.points) and torch.equal(a.gt_ids, b.gt_ids)
    np.random.seed(11)
    c = draw(GeneratePrompts())
    np.random.seed(11)
    d = draw(GeneratePrompts())
    assert torch.equal(c.points, d.points) and torch.equal(c.gt_ids, d.gt_ids)
    e = draw(GeneratePrompts())  # state moved on: another draw
    assert not (torch.equal(c.points, e.points) and torch.equal(c.gt_ids, e.gt_ids))


def test_bad_inputs_are_named():
    with pytest.raises(KeyError, match='gt_masks'):
        GeneratePrompts()(dict(gt_bboxes_labels=np.zeros(0)))
    res = _results()
    res['gt_bboxes_labels'] = np.array([0, 1])
    with pytest.raises(ValueError, match='4 gt_masks but 2 labels'):
        GeneratePrompts()(res)
    with pytest.raises(ValueError, match='label [23] is outside class_names'):
        GeneratePrompts(class_names=('a', 'b'), num_thing_classes=2, text_prob=1.0, seed=0)(
            _results())
    with pytest.raises(ValueError, match='max_objects'):
        GeneratePrompts(max_objects=0)


def test_after_geometric_transforms_prompts_live_in_the_packed_frame(shared_data):
    """Resize + flip + crop + pad on the real COCO sample, then check against the packed gt."""
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadCocoPanopticAnnotations'),
        dict(type='Resize', scale=(300, 200), keep_ratio=True),
        dict(type='RandomFlip', prob=1.0),
        dict(type='RandomCrop', crop_size=(150, 250), allow_negative_crop=True),
        dict(type='Pad', size=(160, 256), pad_val=dict(img=0, seg=255)),
        dict(type='GeneratePrompts', max_objects=50, num_thing_classes=80, box_prob=1.0,
             num_neg_points=(1, 2)),
        dict(type='PackSegInputs'),
    ]
    ds = DATASETS.build(dict(type='CocoPanopticDataset',
                             data_root=str(shared_data / 'coco_panoptic_sample'),
                             ann_file='panoptic_examples.json',
                             data_prefix=dict(img='input_images/', seg='panoptic_examples/'),
                             pipeline=pipeline))
    np.random.seed(0)
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        p, gt = sample.prompts, sample.gt_instances
        sem = sample.gt_sem_seg.sem_seg[0]
        stuff = [v for v in sem.unique().tolist() if 80 <= v < 255]
        n = len(gt)
        assert sorted(p.gt_ids.tolist()) == sorted(
            [k for k in range(n) if gt.masks.masks[k].any()] + [n + k for k in range(len(stuff))])
        for r, gid in enumerate(p.gt_ids.tolist()):
            mask = (torch.from_numpy(gt.masks.masks[gid]).bool() if gid < n
                    else sem == stuff[gid - n])
            pts, lab = p.points[r].long(), p.point_labels[r]
            assert mask[pts[lab == 1, 1], pts[lab == 1, 0]].all()
            assert not mask[pts[lab == 0, 1], pts[lab == 0, 0]].any()
            ys, xs = torch.nonzero(mask, as_tuple=True)
            x1, y1, x2, y2 = p.bboxes[r].tolist()
            assert x1 <= xs.min() and y1 <= ys.min() and x2 >= xs.max() + 1 and y2 >= ys.max() + 1


def test_cache_reuses_prompts_for_identical_masks_only():
    gen = GeneratePrompts(num_thing_classes=2, cache_size=2)
    np.random.seed(0)
    a = gen(dict(_results(), img_path='a.jpg'))['prompts']
    b = gen(dict(_results(), img_path='a.jpg'))['prompts']  # global state moved on, cache hit
    assert torch.equal(a.points, b.points) and torch.equal(a.gt_ids, b.gt_ids)
    flipped = _results()
    flipped['gt_masks'] = flipped['gt_masks'].flip('horizontal')
    c = gen(dict(flipped, img_path='a.jpg'))['prompts']
    assert sorted(c.gt_ids.tolist()) == sorted(a.gt_ids.tolist())
    for r, gid in enumerate(c.gt_ids.tolist()):  # the flipped sample got its own prompts
        if gid < 3:
            m = gen.candidates(flipped)[[g for g, _, _ in gen.candidates(flipped)].index(gid)][1]
            pos = c.points[r][c.point_labels[r] == 1].long()
            assert m[pos[:, 1], pos[:, 0]].all()
    gen(dict(_results(), img_path='b.jpg'))
    assert len(gen._cache) == 2  # least recently used entry dropped


# ---- GenerateVideoPrompts ---------------------------------------------------------------------
from seg.datasets.transforms.prompt_generation import GenerateVideoPrompts  # noqa: E402


def _clip() -> dict:
    """3 frames: object 7 in all frames, object 9 appears in frame 2."""
    frames = []
    for t in range(3):
        masks = np.zeros((2 if t == 2 else 1, 20, 20), np.uint8)
        masks[0, 2:8, 2 + t:8 + t] = 1
        if t == 2:
            masks[1, 12:18, 12:18] = 1
        frames.append(dict(gt_masks=BitmapMasks(masks, 20, 20),
                           gt_bboxes_labels=np.zeros(len(masks), np.int64),
                           gt_ignore_flags=np.zeros(len(masks), bool),
                           gt_instances_ids=np.array([7, 9][:len(masks)])))
    return {k: [f[k] for f in frames] for k in frames[0]}


def test_video_prompts_first_key_all():
    first = GenerateVideoPrompts(frames='first', seed=0)(_clip())['prompts']
    assert first[1] is None and first[2] is None and first[0].gt_ids.tolist() == [0]
    gen = GenerateVideoPrompts(frames='key', num_extra_key_frames=0, seed=0)
    assert gen.prompted_frames(_clip()) == [0, 2]  # first appearances of 7 and 9
    key = gen(_clip())['prompts']
    assert key[1] is None and sorted(key[2].gt_ids.tolist()) == [0, 1]
    every = GenerateVideoPrompts(frames='all', seed=0)(_clip())['prompts']
    assert all(p is not None for p in every)
    clip = _clip()
    for t, p in enumerate(every):
        for r, gid in enumerate(p.gt_ids.tolist()):
            m = clip['gt_masks'][t].masks[gid].astype(bool)
            pos = p.points[r][p.point_labels[r] == 1].long()
            assert m[pos[:, 1], pos[:, 0]].all()


def test_video_prompts_reject_image_only_options():
    with pytest.raises(ValueError, match='frames'):
        GenerateVideoPrompts(frames='middle')
    with pytest.raises(ValueError, match='num_thing_classes and cache_size'):
        GenerateVideoPrompts(cache_size=4)
