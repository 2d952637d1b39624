"""The REST API with FastAPI's TestClient: every endpoint's happy path and its bad inputs
(oversized upload, wrong type / magic bytes, malformed JSON, unknown session, prompt outside the
image, removed object, path traversal), session cap and expiry, and a crashing request."""
import io
import json
import threading
import time
import zipfile

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image

from seg.serving import Limits, ServerSettings
from seg.utils.rle import mask_to_rle

from .conftest import jpeg, zip_frames


def _rle_mask(obj) -> np.ndarray:
    seg = obj['segmentation']
    return mask_utils.decode(dict(seg, counts=seg['counts'].encode())).astype(bool)


def _image_session(client, frames):
    r = client.post('/sessions', files={'file': ('bear.jpg', jpeg(frames[0]), 'image/jpeg')})
    assert r.status_code == 201, r.text
    return r.json()


def _video_session(client, frames):
    r = client.post('/sessions', files={'file': ('clip.zip', zip_frames(frames), 'application/zip')})
    assert r.status_code == 201, r.text
    return r.json()


# ---------------------------------------------------------------------- server
def test_health_and_model(client):
    h = client.get('/health').json()
    assert h['status'] == 'ok' and h['sessions']['live'] == 0 and h['batcher']['window_ms'] == 5.0
    m = client.get('/model').json()
    assert m['random_weights'] is True and m['image_size'] == 256 and m['parameters'] > 0
    assert client.get('/').headers['content-type'].startswith('text/html')  # redirected to the UI
    for name in ('index.html', 'app.js', 'style.css'):  # served, and nothing loaded from elsewhere
        r = client.get(f'/ui/{name}')
        assert r.status_code == 200 and 'http://' not in r.text and 'https://' not in r.text, name


# ---------------------------------------------------------------------- image sessions
def test_image_session_prompts_undo_remove(client, frames):
    info = _image_session(client, frames)
    sid, h, w = info['session_id'], info['height'], info['width']
    assert (info['kind'], info['num_frames'], h, w) == ('image', 1, 144, 256)
    assert client.get(f'/sessions/{sid}').json()['objects'] == []

    r = client.post(f'/sessions/{sid}/prompts', json=dict(obj_id=1, points=[[128, 80]], labels=[1]))
    assert r.status_code == 200, r.text
    (obj,) = r.json()['objects']
    first = _rle_mask(obj)
    assert obj['obj_id'] == 1 and first.shape == (h, w) and obj['area'] == first.sum()
    assert 0 < obj['score'] <= 1.5
    # a second click and a box for object 2
    r = client.post(f'/sessions/{sid}/prompts', json=dict(obj_id=1, points=[[40, 20]], labels=[0]))
    assert r.status_code == 200
    r = client.post(f'/sessions/{sid}/prompts', json=dict(obj_id=2, box=[10, 10, 120, 100], text='a bear'))
    assert [o['obj_id'] for o in r.json()['objects']] == [1, 2]
    assert client.get(f'/sessions/{sid}').json()['objects'] == [1, 2]
    # undo the box: object 2 has no prompt left, object 1 keeps its two clicks
    r = client.post(f'/sessions/{sid}/undo')
    assert [o['obj_id'] for o in r.json()['objects']] == [1]
    # undo the negative click: object 1 is back to its first mask
    (obj,) = client.post(f'/sessions/{sid}/undo').json()['objects']
    assert np.array_equal(_rle_mask(obj), first)
    # a mask prompt (COCO RLE) replaces the clicks
    rle = mask_to_rle(first)
    r = client.post(f'/sessions/{sid}/prompts', json=dict(obj_id=1, mask=rle))
    assert r.status_code == 200, r.text
    # remove object 1; it is then unknown
    assert client.delete(f'/sessions/{sid}/objects/1').json() == {'objects': [2]}
    assert client.get(f'/sessions/{sid}/masks').json() == {'frame': 0, 'objects': []}
    r = client.delete(f'/sessions/{sid}/objects/1')
    assert r.status_code == 404 and 'unknown object id 1' in r.json()['detail']
    assert client.post(f'/sessions/{sid}/undo').status_code == 409  # nothing left to undo
    # delete: the session is gone
    assert client.delete(f'/sessions/{sid}').status_code == 204
    assert client.get(f'/sessions/{sid}').status_code == 404
    assert client.get('/health').json()['sessions']['live'] == 0


@pytest.mark.parametrize('body, match', [
    (dict(obj_id=1, points=[[300, 10]], labels=[1]), 'outside the 256x144 image'),
    (dict(obj_id=1, points=[[10, -1]], labels=[1]), 'outside'),
    (dict(obj_id=1, box=[0, 0, 10, 200]), 'outside'),
    (dict(obj_id=1, frame=1, points=[[10, 10]], labels=[1]), 'frame 1 out of range'),
    (dict(obj_id=1, points=[[10, 10]], labels=[1, 0]), '1 points but 2 labels'),
    (dict(obj_id=1, points=[[10, 10]], labels=[2]), 'labels.0'),
    (dict(obj_id=0, points=[[10, 10]], labels=[1]), 'obj_id'),
    (dict(obj_id=255, points=[[10, 10]], labels=[1]), 'obj_id'),
    (dict(obj_id=1), 'at least one of'),
    (dict(obj_id=1, box=[50, 50, 10, 10]), 'x2 >= x1'),
    (dict(obj_id=1, points=[[10, 10]], labels=[1], colour='red'), 'colour'),
    (dict(obj_id=1, mask=dict(size=[10, 10], counts='0')), 'RLE size'),
    (dict(obj_id=1, mask=dict(size=[144, 256], counts=12)), 'mask.counts'),
    (dict(obj_id=1, mask=mask_to_rle(np.zeros((144, 256), bool))), 'empty'),
])
def test_bad_prompts_are_422(client, frames, body, match):
    sid = _image_session(client, frames)['session_id']
    r = client.post(f'/sessions/{sid}/prompts', json=body)
    assert r.status_code == 422, r.text
    assert match in r.json()['detail']
    assert client.get(f'/sessions/{sid}').json()['objects'] == []  # nothing half-applied


def test_malformed_json_and_non_finite_numbers(client, frames):
    sid = _image_session(client, frames)['session_id']
    headers = {'content-type': 'application/json'}
    r = client.post(f'/sessions/{sid}/prompts', content=b'{"obj_id": 1, "points": [[1, 2]', headers=headers)
    assert r.status_code == 422 and 'JSON' in r.json()['detail']
    r = client.post(f'/sessions/{sid}/prompts', content=b'{"obj_id": 1, "points": [[NaN, 2]], "labels": [1]}',
                    headers=headers)
    assert r.status_code == 422 and 'points' in r.json()['detail']
    r = client.post(f'/sessions/{sid}/propagate', content=b'[1, 2]', headers=headers)
    assert r.status_code == 422


def test_unknown_session_everywhere(client):
    bad = 'A' * 22
    for method, url in [('get', f'/sessions/{bad}'), ('delete', f'/sessions/{bad}'),
                        ('get', f'/sessions/{bad}/masks'), ('post', f'/sessions/{bad}/undo'),
                        ('get', f'/sessions/{bad}/frames/0'), ('get', f'/sessions/{bad}/export'),
                        ('get', f'/sessions/{bad}/propagate'), ('delete', f'/sessions/{bad}/objects/1')]:
        r = getattr(client, method)(url)
        assert r.status_code == 404 and 'unknown session' in r.json()['detail'], (method, url, r.text)
    r = client.post(f'/sessions/{bad}/prompts', json=dict(obj_id=1, points=[[1, 1]], labels=[1]))
    assert r.status_code == 404


def test_session_ids_are_unguessable(client, frames):
    ids = {_image_session(client, frames)['session_id'] for _ in range(3)}
    assert len(ids) == 3 and all(len(i) >= 22 for i in ids)


# ---------------------------------------------------------------------- uploads
def test_upload_checks(make_client, frames, tmp_path):
    client = make_client(ServerSettings(limits=Limits(max_upload_bytes=20_000, max_frames=3, max_side=300)))
    big = np.random.default_rng(0).integers(0, 255, (144, 256, 3), dtype=np.uint8)
    big_png = cv2.imencode('.png', big)[1].tobytes()
    assert len(big_png) > 20_000
    r = client.post('/sessions', files={'file': ('big.png', big_png, 'image/png')})
    assert r.status_code == 413 and 'cap' in r.json()['detail']
    r = client.post('/sessions', files={'file': ('x.jpg', b'hello, not an image at all', 'image/jpeg')})
    assert r.status_code == 415 and 'not a JPEG' in r.json()['detail']
    small = cv2.resize(frames[0], (64, 36))
    r = client.post('/sessions', files={'file': ('x.mp4', jpeg(small), 'video/mp4')})
    assert r.status_code == 415 and "declared content type 'video/mp4'" in r.json()['detail']
    r = client.post('/sessions', files={'file': ('x.jpg', b'\xff\xd8\xff' + b'\0' * 100, 'image/jpeg')})
    assert r.status_code == 422 and 'unreadable image' in r.json()['detail']
    wide = cv2.resize(small, (320, 20))
    r = client.post('/sessions', files={'file': ('wide.jpg', jpeg(wide), 'image/jpeg')})
    assert r.status_code == 422 and 'resolution cap' in r.json()['detail']
    r = client.post('/sessions', files={'file': ('c.zip', zip_frames([small] * 4), 'application/zip')})
    assert r.status_code == 422 and '4 frames exceed the cap of 3' in r.json()['detail']
    # a zip member with an image name but other bytes
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        z.writestr('00000.jpg', jpeg(small))
        z.writestr('00001.jpg', b'#!/bin/sh\necho pwned\n')
    r = client.post('/sessions', files={'file': ('c.zip', buf.getvalue(), 'application/zip')})
    assert r.status_code == 415 and '00001.jpg' in r.json()['detail']
    assert client.get('/health').json()['sessions']['live'] == 0


def test_zip_slip_names_stay_inside(client, frames, tmp_path):
    names = ['../../../../../../tmp/zipslip_00000.jpg', 'a/b/00001.jpg', 'notes.txt']
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        for n, f in zip(names, frames):
            z.writestr(n, jpeg(f) if n.endswith('.jpg') else b'ignored')
    r = client.post('/sessions', files={'file': ('c.zip', buf.getvalue(), 'application/octet-stream')})
    assert r.status_code == 201, r.text
    assert r.json()['num_frames'] == 2
    assert not __import__('os').path.exists('/tmp/zipslip_00000.jpg')


def test_mp4_upload_and_frames(client, frames, tmp_path):
    path = tmp_path / 'clip.mp4'
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 10, (w, h))
    for f in frames:
        writer.write(f[..., ::-1])
    writer.release()
    r = client.post('/sessions', files={'file': ('clip.mp4', path.read_bytes(), 'video/mp4')})
    assert r.status_code == 201, r.text
    info = r.json()
    assert (info['kind'], info['num_frames'], info['width'], info['height']) == ('video', 4, w, h)
    r = client.get(f'/sessions/{info["session_id"]}/frames/3')
    assert r.headers['content-type'] == 'image/jpeg'
    assert np.asarray(Image.open(io.BytesIO(r.content))).shape == (h, w, 3)
    assert client.get(f'/sessions/{info["session_id"]}/frames/4').status_code == 422


# ---------------------------------------------------------------------- server paths
def test_server_paths_allow_list(make_client, bear_dir, tmp_path):
    outside = tmp_path / 'secret'
    outside.mkdir()
    (outside / '00000.jpg').write_bytes((bear_dir / '00000.jpg').read_bytes())
    root = tmp_path / 'allowed'
    root.mkdir()
    (root / 'escape').symlink_to(outside)
    (root / 'bear').symlink_to(bear_dir)  # symlinked into the root: resolves outside it
    client = make_client(ServerSettings(allowed_dirs=[root, bear_dir.parent]))
    r = client.post('/sessions/path', json=dict(path='bear'))
    assert r.status_code == 201 and r.json()['num_frames'] == 2
    r = client.post('/sessions/path', json=dict(path=str(bear_dir / '00000.jpg')))
    assert r.status_code == 201 and r.json()['kind'] == 'image'
    for bad in ['../secret', '../../../../etc/passwd', '/etc/passwd', 'escape', 'escape/00000.jpg',
                str(outside), 'bear/../../../../../etc']:
        r = client.post('/sessions/path', json=dict(path=bad))
        assert r.status_code == 403, (bad, r.text)
    assert client.post('/sessions/path', json=dict(path='x\u0000y')).status_code == 422
    assert make_client().post('/sessions/path', json=dict(path='bear')).status_code == 403  # disabled


# ---------------------------------------------------------------------- video sessions
def test_video_prompt_propagate_export(client, frames):
    info = _video_session(client, frames)
    sid, n = info['session_id'], info['num_frames']
    assert n == 4
    r = client.post(f'/sessions/{sid}/propagate', json={})
    assert r.status_code == 422 and 'no prompts yet' in r.json()['detail']
    for obj, xy in ((1, [128, 80]), (2, [30, 30])):
        r = client.post(f'/sessions/{sid}/prompts', json=dict(frame=1, obj_id=obj, points=[xy], labels=[1]))
        assert r.status_code == 200, r.text
    r = client.post(f'/sessions/{sid}/propagate', json=dict(direction='both', wait=True))
    assert r.status_code == 200, r.text
    assert r.json() == dict(state='done', done=5, total=5, error=None)  # frames 1..3, then 1..0
    for f in range(n):
        objs = client.get(f'/sessions/{sid}/masks', params=dict(frame=f)).json()['objects']
        assert [o['obj_id'] for o in objs] == [1, 2]
    assert client.get(f'/sessions/{sid}/masks', params=dict(frame=9)).status_code == 422
    # a second run, in the background: 202, then progress until done
    r = client.post(f'/sessions/{sid}/propagate', json=dict(start_frame=2, max_frames=1))
    assert r.status_code == 202
    for _ in range(200):
        p = client.get(f'/sessions/{sid}/propagate').json()
        if p['state'] != 'running':
            break
        time.sleep(0.05)
    assert p == dict(state='done', done=2, total=2, error=None)

    masks = {f: {o['obj_id']: _rle_mask(o) for o in
                 client.get(f'/sessions/{sid}/masks', params=dict(frame=f)).json()['objects']}
             for f in range(n)}
    r = client.get(f'/sessions/{sid}/export', params=dict(format='davis'))
    assert r.status_code == 200 and r.headers['content-type'] == 'application/zip'
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert z.namelist() == [f'{f:05d}.png' for f in range(n)]
    for f in range(n):
        png = Image.open(io.BytesIO(z.read(f'{f:05d}.png')))
        assert png.mode == 'P'
        ids = np.asarray(png)
        assert np.array_equal(ids == 1, masks[f][1])  # the lower id wins overlaps: 1 is exact
        assert np.array_equal(ids == 2, masks[f][2] & ~masks[f][1])
    coco = client.get(f'/sessions/{sid}/export', params=dict(format='coco')).json()
    assert coco['num_frames'] == n and [fr['frame'] for fr in coco['frames']] == list(range(n))
    assert coco['frames'][3]['objects'][0]['segmentation'] == \
        client.get(f'/sessions/{sid}/masks', params=dict(frame=3)).json()['objects'][0]['segmentation']
    mp4 = client.get(f'/sessions/{sid}/export', params=dict(format='mp4'))
    assert mp4.headers['content-type'] == 'video/mp4' and mp4.content[4:8] == b'ftyp'
    r = client.get(f'/sessions/{sid}/export', params=dict(format='gif'))
    assert r.status_code == 422 and 'davis' in r.json()['detail']


def test_propagate_refusals(client, frames):
    img = _image_session(client, frames)['session_id']
    r = client.post(f'/sessions/{img}/propagate', json={})
    assert r.status_code == 422 and 'needs a video session' in r.json()['detail']
    sid = _video_session(client, frames)['session_id']
    client.post(f'/sessions/{sid}/prompts', json=dict(obj_id=1, points=[[100, 70]], labels=[1]))
    for body in (dict(start_frame=4), dict(direction='sideways'), dict(max_frames=-1)):
        assert client.post(f'/sessions/{sid}/propagate', json=body).status_code == 422, body
    # while a propagation runs, prompts are refused (409): hold the model's worker meanwhile
    gate = threading.Event()
    client.engine.batcher.submit('call', gate.wait)
    try:
        assert client.post(f'/sessions/{sid}/propagate', json={}).status_code == 202
        r = client.post(f'/sessions/{sid}/prompts', json=dict(obj_id=1, points=[[10, 10]], labels=[1]))
        assert r.status_code == 409 and 'propagating' in r.json()['detail']
        assert client.delete(f'/sessions/{sid}/objects/1').status_code == 409
    finally:
        gate.set()
    for _ in range(200):
        if client.get(f'/sessions/{sid}/propagate').json()['state'] == 'done':
            break
        time.sleep(0.05)
    assert client.get(f'/sessions/{sid}/propagate').json()['state'] == 'done'


# ---------------------------------------------------------------------- hygiene
def test_session_cap_and_expiry(make_client, frames):
    client = make_client(ServerSettings(max_sessions=2, session_ttl_s=0.3))
    a = _image_session(client, frames)['session_id']
    _image_session(client, frames)
    r = client.post('/sessions', files={'file': ('x.jpg', jpeg(frames[0]), 'image/jpeg')})
    assert r.status_code == 503 and 'maximum of 2 sessions' in r.json()['detail']
    time.sleep(0.4)
    assert client.get(f'/sessions/{a}').status_code == 404  # expired
    _image_session(client, frames)  # room again
    assert client.get('/health').json()['sessions']['live'] == 1


def test_a_crashing_request_does_not_stop_the_server(client, frames, monkeypatch):
    sid = _image_session(client, frames)['session_id']
    service = client.app.state.service

    def boom(*args, **kwargs):
        raise RuntimeError('simulated bug')

    monkeypatch.setattr(service, 'frame_masks', boom)
    r = client.get(f'/sessions/{sid}/masks')
    assert r.status_code == 500 and 'simulated bug' in r.json()['detail']
    monkeypatch.undo()
    # a model call that raises inside the worker: the request fails, the worker goes on
    monkeypatch.setattr(client.engine.batcher._handlers['decode'], 'fn', boom)
    r = client.post(f'/sessions/{sid}/prompts', json=dict(obj_id=1, points=[[10, 10]], labels=[1]))
    assert r.status_code == 500
    monkeypatch.undo()
    r = client.post(f'/sessions/{sid}/prompts', json=dict(obj_id=1, points=[[10, 10]], labels=[1]))
    assert r.status_code == 200 and client.get('/health').json()['status'] == 'ok'
    assert json.loads(client.get(f'/sessions/{sid}').text)['objects'] == [1]
