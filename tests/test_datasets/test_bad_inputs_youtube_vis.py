"""Bad YouTube-VIS jsons / clip files to YouTubeVIS2019Dataset and YouTubeVISClipFileDataset:
a ``ValueError`` / ``FileNotFoundError`` naming the file, record and key when the dataset is
built, never a bare KeyError later or an annotation silently dropped."""
import copy
import json
import pickle
import warnings

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from seg.datasets.converters import ytvis_to_interactive_clips
from seg.registry import DATASETS

H, W, T = 16, 24, 3


def _rle(mask):
    """Uncompressed RLE, as YouTube-VIS 2019 ships."""
    counts, flat, value, run = [], np.asarray(mask, np.uint8).flatten(order='F'), 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    counts.append(run)
    return {'size': [H, W], 'counts': counts}


def valid_ytvis():
    """One video of T frames, one person visible in frames 0 and 2."""
    mask = np.zeros((H, W), np.uint8)
    mask[3:9, 4:12] = 1
    box = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask))).tolist()
    return {'videos': [{'id': 1, 'height': H, 'width': W,
                        'file_names': [f'v/{t:05d}.jpg' for t in range(T)]}],
            'categories': [{'id': 1, 'name': 'person'}],
            'annotations': [{'id': 1, 'video_id': 1, 'category_id': 1, 'iscrowd': 0,
                             'segmentations': [_rle(mask), None, _rle(mask)],
                             'bboxes': [box, None, box], 'areas': [48, None, 48]}]}


def write_frames(root):
    (root / 'img' / 'v').mkdir(parents=True)
    for t in range(T):
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / 'img' / 'v' / f'{t:05d}.jpg')


def _set(path, value):
    """Set ``data[path...] = value`` (``value`` None with a trailing '-': delete the key)."""
    def mutate(data):
        *keys, last = path
        for k in keys:
            data = data[k]
        if isinstance(last, str) and last.startswith('-'):
            data.pop(last[1:])
        else:
            data[last] = value
    return mutate


ANN, VID = ('annotations', 0), ('videos', 0)
# name -> (text edit of the json file | data edit, error, match); shared by the converter's tests
JSON_CASES = {
    'empty file': ('', ValueError, 'a.json is empty'),
    'truncated': ('{"videos": [', ValueError, 'a.json is not valid JSON'),
    'NaN box': (lambda t: t.replace('"bboxes": [[4.0', '"bboxes": [[NaN'), ValueError,
                "non-finite number 'NaN'"),
    'a list': ('[]', ValueError, 'expected a JSON dict, got list'),
    'no videos key': (_set(['-videos'], None), ValueError, r"lacks the key\(s\) \['videos'\]"),
    'no video': (_set(['videos'], []), ValueError, '"videos" is an empty list'),
    'video without height': (_set([*VID, '-height'], None), ValueError,
                             r"video 0 lacks the key\(s\) \['height'\]"),
    'video height a string': (_set([*VID, 'height'], '16'), TypeError,
                              'video 1 "height" must be an int'),
    'video width 0': (_set([*VID, 'width'], 0), ValueError, 'video 1 "width" must be >= 1'),
    'file_names not a list': (_set([*VID, 'file_names'], 'v/00000.jpg'), ValueError,
                              '"file_names" must be a JSON list, got str'),
    'file name a number': (_set([*VID, 'file_names', 1], 7), ValueError,
                           '"file_names" must be non-empty strings'),
    'video id twice': (lambda d: d['videos'].append(d['videos'][0]), ValueError,
                       'video: id 1 is used twice'),
    'no categories': (_set(['-categories'], None), ValueError,
                      r"lacks the key\(s\) \['categories'\]"),
    'annotation of a missing video': (_set([*ANN, 'video_id'], 9), ValueError,
                                      'annotation 1 "video_id" is 9, which is not the id of any video'),
    'annotation of a missing category': (_set([*ANN, 'category_id'], 3), ValueError,
                                         '"category_id" is 3, which is not the id of any category'),
    'annotation id twice': (lambda d: d['annotations'].append(d['annotations'][0]), ValueError,
                            'annotation: id 1 is used twice'),
    'annotation id a float': (_set([*ANN, 'id'], 1.0), TypeError, '"id" must be an int, got 1.0'),
    'annotation without segmentations': (_set([*ANN, '-segmentations'], None), ValueError,
                                         r"annotation 0 lacks the key\(s\) \['segmentations'\]"),
    'segmentations not a list': (_set([*ANN, 'segmentations'], {}), ValueError,
                                 '"segmentations" must be a JSON list, got dict'),
    'RLE of another size': (_set([*ANN, 'segmentations', 0, 'size'], [8, 8]), ValueError,
                            r'segmentation 0 has size \[8, 8\], its video 1 is \[16, 24\]'),
    'RLE without counts': (_set([*ANN, 'segmentations', 2, '-counts'], None), ValueError,
                           r"segmentation 2 lacks the key\(s\) \['counts'\]"),
    'negative box height': (_set([*ANN, 'bboxes', 0, 3], -6), ValueError,
                            r'"bboxes"\[0\] must be finite with width and height >= 0'),
    'fewer boxes than frames': (_set([*ANN, 'bboxes'], [[4, 3, 8, 6]]), ValueError,
                                r'"bboxes" must be a list of one box \(or null\) per segmentation'),
    'iscrowd 5': (_set([*ANN, 'iscrowd'], 5), ValueError, '"iscrowd" must be 0 or 1, got 5'),
}


def write_case(path, case):
    edit = JSON_CASES[case][0]
    text = json.dumps(valid_ytvis())
    if isinstance(edit, str):
        text = edit
    elif case == 'NaN box':
        text = edit(text)
    else:
        data = json.loads(text)
        edit(data)
        text = json.dumps(data)
    path.write_text(text)


def _dataset(root, ann='a.json', **kwargs):
    return DATASETS.build(dict(type='YouTubeVIS2019Dataset', data_root=str(root), ann_file=ann,
                               data_prefix=dict(img='img/'), pipeline=[], **kwargs))


@pytest.mark.parametrize('case', list(JSON_CASES))
def test_bad_json(tmp_path, case):
    write_frames(tmp_path)
    write_case(tmp_path / 'a.json', case)
    _, error, match = JSON_CASES[case]
    with pytest.raises(error, match=match):
        _dataset(tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='YouTube-VIS annotation file not found: .*nope.json'):
        _dataset(tmp_path, 'nope.json')


def test_missing_frame_fails_when_built_or_skips_the_video(tmp_path):
    write_frames(tmp_path)
    data = valid_ytvis()
    data['videos'].append(dict(copy.deepcopy(data['videos'][0]), id=2,
                               file_names=['w/00000.jpg']))
    (tmp_path / 'a.json').write_text(json.dumps(data))
    with pytest.raises(FileNotFoundError, match="video 'w': 1 file.* missing, e.g. .*w/00000.jpg"):
        _dataset(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        ds = _dataset(tmp_path, on_bad_data='skip')
    assert len(ds) == 1 and ds.get_data_info(0)['video_name'] == 'v'  # the documented skip
    assert any('w/00000.jpg' in str(w.message) for w in caught)


def test_training_set_without_annotations(tmp_path):
    write_frames(tmp_path)
    data = valid_ytvis()
    data.pop('annotations')
    (tmp_path / 'a.json').write_text(json.dumps(data))
    with pytest.raises(ValueError, match='annotation list is empty'):
        _dataset(tmp_path)
    assert len(_dataset(tmp_path, test_mode=True)) == 1  # the released valid / test layout


@pytest.fixture
def clip_file(tmp_path):
    write_frames(tmp_path)
    (tmp_path / 'a.json').write_text(json.dumps(valid_ytvis()))
    ytvis_to_interactive_clips(str(tmp_path / 'a.json'), str(tmp_path / 'c.pkl'),
                               clip_length=T)
    return tmp_path / 'c.pkl'


def _clip_dataset(root, clip_file):
    return DATASETS.build(dict(type='YouTubeVISClipFileDataset', clip_file=str(clip_file),
                               data_root=str(root), ann_file='a.json',
                               data_prefix=dict(img='img/'), pipeline=[]))


def _edit_pickle(path, fn):
    with open(path, 'rb') as f:
        meta = pickle.load(f)
    fn(meta)
    with open(path, 'wb') as f:
        pickle.dump(meta, f)


def _first_row(meta):
    return meta['clips'][0]['prompts'][0][0]


@pytest.mark.parametrize('mutate,error,match', [
    (lambda p: p.unlink(), FileNotFoundError, 'clip file not found'),
    (lambda p: p.write_bytes(p.read_bytes()[:100]), ValueError,
     'c.pkl is not a readable pickle'),
    (lambda p: p.write_bytes(b''), ValueError, 'c.pkl is empty'),
    (lambda p: _edit_pickle(p, lambda m: _first_row(m).update(points=np.array([[np.nan, 1.0]]))),
     ValueError, r'key frame 0 "points" has non-finite values'),
    (lambda p: _edit_pickle(p, lambda m: _first_row(m).update(point_labels=np.array([2] * len(
        _first_row(m)['points'])))), ValueError, r'"point_labels" must be 1 \(positive\) or 0'),
    (lambda p: _edit_pickle(p, lambda m: _first_row(m).update(box=np.zeros(3))), ValueError,
     r'"box" must be \[x1, y1, x2, y2\]'),
    (lambda p: _edit_pickle(p, lambda m: _first_row(m).pop('points')), ValueError,
     r"key frame 0 lacks the key\(s\) \['points'\]"),
    (lambda p: _edit_pickle(p, lambda m: _first_row(m).update(category_id=40)), ValueError,
     r'category ids \[40\] are not categories'),
    (lambda p: _edit_pickle(p, lambda m: m.update(version=0)), ValueError, 'version 0'),
])
def test_bad_clip_file(tmp_path, clip_file, mutate, error, match):
    mutate(clip_file)
    with pytest.raises(error, match=match):
        _clip_dataset(tmp_path, clip_file)


def test_valid_files(tmp_path, clip_file):
    assert len(_dataset(tmp_path)) == 1
    ds = _clip_dataset(tmp_path, clip_file)
    assert len(ds) == 1 and ds.get_data_info(0)['images'][0]['stored_prompts'][0]['label'] == 0
