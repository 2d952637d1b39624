"""COCO -> fastsam2_interactive.json: prompts hit their objects, texts name them, same seed = same file."""
import json

import numpy as np
import pytest
from PIL import Image

from seg.datasets.converters.coco_interactive import coco_to_interactive_prompts, load_interactive_prompts
from seg.datasets.prompt_sampler import category_words
from seg.utils.masks import rgb2id


def _check_prompts(data, mask_of):
    names = {c['id']: c['name'] for c in data['categories']}
    for p in data['prompts']:
        mask = mask_of(p)
        pts = np.array(p['points'], int).reshape(-1, 2)
        lab = np.array(p['point_labels'])
        assert (lab == 1).sum() >= 1
        assert mask[pts[lab == 1, 1], pts[lab == 1, 0]].all()
        assert not mask[pts[lab == 0, 1], pts[lab == 0, 0]].any()
        ys, xs = np.nonzero(mask)
        x1, y1, x2, y2 = p['box']
        assert x1 <= xs.min() and y1 <= ys.min() and x2 >= xs.max() + 1 and y2 >= ys.max() + 1
        assert any(w in p['text'] for w in category_words(names[p['category_id']]))


def test_real_panoptic_sample(shared_data, tmp_path):
    root = shared_data / 'coco_panoptic_sample'
    out = tmp_path / 'fastsam2_interactive.json'
    summary = coco_to_interactive_prompts(str(root / 'panoptic_examples.json'), str(out),
                                          panoptic_dir=str(root / 'panoptic_examples'), seed=0)
    data = load_interactive_prompts(str(out))
    raw = json.loads((root / 'panoptic_examples.json').read_text())
    non_crowd = sum(1 for a in raw['annotations'] for s in a['segments_info'] if not s['iscrowd'])
    assert summary['prompts'] == len(data['prompts']) == non_crowd == 47
    assert {p['isthing'] for p in data['prompts']} == {0, 1}  # stuff segments too
    pngs = {a['image_id']: rgb2id(np.array(Image.open(
        root / 'panoptic_examples' / a['file_name']).convert('RGB'))) for a in raw['annotations']}
    _check_prompts(data, lambda p: pngs[p['image_id']] == p['ann_id'])


def test_toy_instances_deterministic_and_versioned(toy, tmp_path):
    ann = str(toy.coco_root / 'annotations' / 'instances_train2017.json')
    a, b, c = tmp_path / 'a.json', tmp_path / 'b.json', tmp_path / 'c.json'
    coco_to_interactive_prompts(ann, str(a), seed=1)
    coco_to_interactive_prompts(ann, str(b), seed=1)
    coco_to_interactive_prompts(ann, str(c), seed=2)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    data = load_interactive_prompts(str(a))
    assert data['version'] == 1 and data['source']['kind'] == 'instances'
    truth = {int(name[:-4]): segs for name, segs in toy.coco['train2017'].items()}
    _check_prompts(data, lambda p: truth[p['image_id']][p['ann_id']][1])
    bad = json.loads(a.read_text())
    bad['version'] = 0
    (tmp_path / 'old.json').write_text(json.dumps(bad))
    with pytest.raises(ValueError, match='version 0'):
        load_interactive_prompts(str(tmp_path / 'old.json'))


def test_bad_inputs_name_the_file(toy, tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.json'):
        coco_to_interactive_prompts(str(tmp_path / 'nope.json'), str(tmp_path / 'o.json'))
    raw = json.loads((toy.coco_root / 'annotations' / 'panoptic_val2017.json').read_text())
    raw['annotations'][0]['segments_info'][0]['id'] = 1  # a segment absent from its PNG
    ann = tmp_path / 'p.json'
    ann.write_text(json.dumps(raw))
    pan_dir = str(toy.coco_root / 'annotations' / 'panoptic_val2017')
    with pytest.raises(ValueError, match='p.json: object 1 of image .* empty mask'):
        coco_to_interactive_prompts(str(ann), str(tmp_path / 'o.json'), panoptic_dir=pan_dir)
    with pytest.warns(UserWarning, match='object 1'):
        s = coco_to_interactive_prompts(str(ann), str(tmp_path / 'o.json'), panoptic_dir=pan_dir,
                                        on_bad_data='skip')
    total = sum(len(a['segments_info']) for a in raw['annotations'])
    assert s['prompts'] == total - 1


def test_detection_format_json_keeps_isthing(shared_data, tmp_path):
    """COCO's panoptic 'detection format' json (RLE per segment, things and stuff)."""
    root = shared_data / 'coco_panoptic_sample'
    out = tmp_path / 'det.json'
    coco_to_interactive_prompts(str(root / 'panoptic_coco_detection_format.json'), str(out),
                                categories_file=str(root / 'panoptic_coco_categories.json'))
    data = load_interactive_prompts(str(out))
    raw = json.loads((root / 'panoptic_coco_detection_format.json').read_text())
    cats = json.loads((root / 'panoptic_coco_categories.json').read_text())
    isthing = {c['id']: c['isthing'] for c in cats}
    assert len(data['prompts']) == sum(1 for a in raw['annotations'] if not a['iscrowd'])
    assert all(p['isthing'] == isthing[p['category_id']] for p in data['prompts'])
    assert {p['isthing'] for p in data['prompts']} == {0, 1}
