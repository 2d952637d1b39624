"""The converters' outputs as training data, end to end on the toy dataset: COCO prompts through
flip / resize / crop land on their objects; YouTube-VIS stored clips keep their key-frame prompts."""
import numpy as np
import pytest

from seg.datasets.converters import (
    coco_to_interactive_prompts,
    load_ytvis_interactive_meta,
    ytvis_to_interactive_clips,
)
from seg.datasets.toy_dataset import PANOPTIC_METAINFO, VIS_METAINFO
from seg.registry import DATASETS


@pytest.fixture(scope='module')
def files(toy, tmp_path_factory):
    out = tmp_path_factory.mktemp('stored')
    ann = toy.coco_root / 'annotations'
    coco_to_interactive_prompts(str(ann / 'panoptic_train2017.json'), str(out / 'prompts.json'),
                                panoptic_dir=str(ann / 'panoptic_train2017'), seed=0)
    ytvis_to_interactive_clips(str(toy.ytvis_root / 'train.json'), str(out / 'clips.pkl'), seed=0,
                               clip_length=(3, 5))
    return out


def _coco(toy, prompt_file, pipeline):
    return DATASETS.build(dict(
        type='CocoPanopticPromptFileDataset', prompt_file=str(prompt_file),
        data_root=str(toy.coco_root), ann_file='annotations/panoptic_train2017.json',
        data_prefix=dict(img='train2017/', seg='annotations/panoptic_train2017/'),
        metainfo=PANOPTIC_METAINFO, pipeline=pipeline))


def test_coco_prompts_land_on_their_objects_after_augmentation(toy, files):
    ds = _coco(toy, files / 'prompts.json', [
        dict(type='LoadImageFromFile'),
        dict(type='LoadCocoPanopticAnnotations'),
        dict(type='RandomFlip', prob=1.0),
        dict(type='Resize', scale=(160, 120), keep_ratio=True),
        dict(type='RandomCrop', crop_size=(96, 128), crop_type='absolute', recompute_bbox=True,
             allow_negative_crop=True),
        dict(type='LoadStoredPrompts', max_objects=20, num_thing_classes=3, box_prob=1.0),
        dict(type='PackSegInputs')])
    assert all(info['stored_prompts'] for info in ds.data_list)
    hits = total = 0
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        things = sample.gt_instances.masks.to_ndarray().astype(bool)
        sem = sample.gt_sem_seg.sem_seg[0].numpy()
        stuff = [sem == v for v in np.unique(sem) if 3 <= v < 255]
        targets = list(things) + stuff  # the detector's target order, which gt_ids index
        p = sample.prompts
        assert len(p) and (p.gt_ids >= 0).all() and (p.gt_ids < len(targets)).all()
        for row, gid in enumerate(p.gt_ids.tolist()):
            mask = targets[gid]
            pos = p.points[row][p.point_labels[row] == 1].long()
            hits += int(mask[pos[:, 1], pos[:, 0]].sum())
            total += len(pos)
            if p.box_valid[row]:  # the (clipped) box holds the whole visible object
                ys, xs = np.nonzero(mask)
                x1, y1, x2, y2 = p.bboxes[row].tolist()
                assert x1 <= xs.min() and y1 <= ys.min() and xs.max() < x2 and ys.max() < y2
    assert total > 20 and hits / total > 0.95  # resizing may move a click off a thin border


def test_prompt_file_errors(toy, files, tmp_path):
    with pytest.raises(FileNotFoundError, match='interactive prompt file not found: .*nope.json'):
        _coco(toy, tmp_path / 'nope.json', [])
    instances = tmp_path / 'inst.json'
    coco_to_interactive_prompts(str(toy.coco_root / 'annotations/instances_train2017.json'),
                                str(instances), seed=0)
    with pytest.raises(ValueError, match='made from a COCO instances json'):
        _coco(toy, instances, [])


def test_ytvis_stored_clips_keep_their_key_frame_prompts(toy, files):
    ds = DATASETS.build(dict(
        type='YouTubeVISClipFileDataset', clip_file=str(files / 'clips.pkl'),
        data_root=str(toy.ytvis_root), ann_file='train.json', data_prefix=dict(img='train/JPEGImages/'),
        metainfo=VIS_METAINFO, pipeline=[
            dict(type='SampleVideoClip', clip_length=None),
            dict(type='TransformBroadcaster', share_random_params=True,
                 transforms=[dict(type='LoadImageFromFile'),
                             dict(type='LoadVideoFrameAnnotations'),
                             dict(type='RandomFlip', prob=1.0)]),
            dict(type='LoadStoredPrompts', max_objects=10),
            dict(type='PackSegTrackInputs')]))
    clips = load_ytvis_interactive_meta(str(files / 'clips.pkl'))['clips']
    assert len(ds) == len(clips)
    for i, clip in enumerate(clips):
        frames = ds[i]['data_samples'].video_data_samples
        assert len(frames) == len(clip['frame_indices'])
        prompted = [t for t, f in enumerate(frames) if 'prompts' in f]
        assert prompted == [t for t in clip['key_frames'] if clip['prompts'][t]]
        for t in prompted:
            f = frames[t]
            ids = f.gt_instances.instances_ids[f.prompts.gt_ids].tolist()
            assert sorted(ids) == sorted(r['ann_id'] for r in clip['prompts'][t])
