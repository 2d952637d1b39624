"""YouTube-VIS -> ytvis_interactive_meta.pkl: clip lengths, key frames, prompts, determinism."""
import json

import numpy as np
import pytest

from seg.datasets.converters.ytvis_interactive import load_ytvis_interactive_meta, ytvis_to_interactive_clips


def test_toy_clips(toy, tmp_path):
    ann = str(toy.ytvis_root / 'train.json')
    out = tmp_path / 'ytvis_interactive_meta.pkl'
    summary = ytvis_to_interactive_clips(ann, str(out), seed=0, clip_length=(4, 6),
                                         num_extra_key_frames=2)
    meta = load_ytvis_interactive_meta(str(out))
    assert summary['clips'] == len(meta['clips']) > summary['videos']
    for clip in meta['clips']:
        truth = toy.ytvis[clip['video_name']]
        frames = clip['frame_indices']
        assert np.all(np.diff(frames) == 1) and len(frames) <= 6
        assert clip['file_names'] == [f"{clip['video_name']}/{5 * t:05d}.jpg" for t in frames]
        # every object's first appearance in the clip is a key frame, and so are both ends
        first_seen = {}
        for pos, t in enumerate(frames):
            for aid in truth[t]:
                first_seen.setdefault(aid, pos)
        assert set(first_seen.values()) | {0, len(frames) - 1} == set(clip['key_frames'])
        for pos, rows in clip['prompts'].items():
            objects = truth[frames[pos]]
            assert sorted(r['ann_id'] for r in rows) == sorted(objects)
            for r in rows:
                m = objects[r['ann_id']]
                pts, lab = r['points'].astype(int), r['point_labels']
                assert m[pts[lab == 1, 1], pts[lab == 1, 0]].all()
                assert not m[pts[lab == 0, 1], pts[lab == 0, 0]].any()
                assert r['box'] is not None and r['text']


def test_same_seed_same_file(toy, tmp_path):
    ann = str(toy.ytvis_root / 'train.json')
    for name, seed in (('a', 3), ('b', 3), ('c', 4)):
        ytvis_to_interactive_clips(ann, str(tmp_path / f'{name}.pkl'), seed=seed)
    a, b, c = (tmp_path / f'{n}.pkl' for n in 'abc')
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_bad_json(toy, tmp_path):
    raw = json.loads((toy.ytvis_root / 'train.json').read_text())
    (tmp_path / 'e.json').write_text(json.dumps(dict(raw, annotations=[])))
    with pytest.raises(ValueError, match='e.json: the annotation list is empty'):
        ytvis_to_interactive_clips(str(tmp_path / 'e.json'), str(tmp_path / 'o.pkl'))
    raw['videos'][0]['file_names'] = []
    (tmp_path / 'z.json').write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=f"z.json: video {raw['videos'][0]['id']} has no frames"):
        ytvis_to_interactive_clips(str(tmp_path / 'z.json'), str(tmp_path / 'o.pkl'))
    (tmp_path / 'junk.pkl').write_bytes(b'\x80\x04N.')  # pickle of None
    with pytest.raises(ValueError, match='not a FastSAM2 YouTube-VIS'):
        load_ytvis_interactive_meta(str(tmp_path / 'junk.pkl'))
