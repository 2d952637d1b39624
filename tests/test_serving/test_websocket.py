"""The WebSocket channel: a stream's frames in, one result per frame in order; drop-oldest
backpressure; prompts on the live frame; propagation pushed frame by frame; bad messages."""
import pytest
from starlette.websockets import WebSocketDisconnect

from .conftest import jpeg, zip_frames


def _next(ws, kind='masks'):
    """The next message of ``kind`` (errors are returned too, so a test sees them)."""
    while True:
        msg = ws.receive_json()
        if msg['type'] in (kind, 'error'):
            return msg


def test_stream_one_result_per_frame_in_order(client, frames):
    sid = client.post('/sessions/stream').json()['session_id']
    with client.websocket_connect(f'/sessions/{sid}/ws?max_queue=16') as ws:
        ws.send_bytes(jpeg(frames[0]))
        first = _next(ws)
        assert (first['input_index'], first['frame'], first['objects']) == (0, 0, [])
        ws.send_json(dict(type='prompt', frame=0, obj_id=1, points=[[128, 72]], labels=[1]))
        prompted = _next(ws)
        assert prompted['frame'] == 0 and [o['obj_id'] for o in prompted['objects']] == [1]
        ws.send_json(dict(type='prompt', frame=3, obj_id=1, points=[[1, 1]], labels=[1]))
        err = _next(ws)
        assert err['type'] == 'error' and 'current frame 0' in err['detail']
        stream = frames[1:] * 2
        for f in stream:  # back to back: queued, none dropped (max_queue=16)
            ws.send_bytes(jpeg(f))
        got = [_next(ws) for _ in stream]
    assert [m['input_index'] for m in got] == list(range(1, len(stream) + 1))
    assert [m['frame'] for m in got] == list(range(1, len(stream) + 1))
    assert all([o['obj_id'] for o in m['objects']] == [1] and m['dropped'] == 0 for m in got)
    info = client.get(f'/sessions/{sid}').json()
    assert info['num_frames'] == len(stream) + 1 and info['kind'] == 'stream'


def test_stream_backpressure_drops_oldest(client, frames):
    sid = client.post('/sessions/stream').json()['session_id']
    sent = 12
    with client.websocket_connect(f'/sessions/{sid}/ws?max_queue=1') as ws:
        for i in range(sent):
            ws.send_bytes(jpeg(frames[i % len(frames)]))
        got = []
        while not got or got[-1]['input_index'] != sent - 1:  # the newest frame is never dropped
            got.append(_next(ws))
    idx = [m['input_index'] for m in got]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    assert len(got) + got[-1]['dropped'] == sent
    assert [m['frame'] for m in got] == list(range(len(got)))  # the tracker saw only what was kept


def test_video_session_propagation_is_pushed(client, frames):
    r = client.post('/sessions', files={'file': ('c.zip', zip_frames(frames), 'application/zip')})
    sid = r.json()['session_id']
    with client.websocket_connect(f'/sessions/{sid}/ws') as ws:
        ws.send_json(dict(type='prompt', frame=0, obj_id=3, box=[60, 30, 200, 120]))
        assert [o['obj_id'] for o in _next(ws)['objects']] == [3]
        ws.send_json(dict(type='propagate'))
        pushed = []
        while True:
            msg = ws.receive_json()
            if msg['type'] == 'masks':
                pushed.append(msg['frame'])
            elif msg['type'] == 'progress' and msg['state'] != 'running':
                break
        assert msg['state'] == 'done' and pushed == [0, 1, 2, 3]
        ws.send_json(dict(type='remove_object', obj_id=3))
        assert _next(ws, 'objects')['objects'] == []
        ws.send_bytes(jpeg(frames[0]))  # frames are for stream sessions only
        assert 'need a stream session' in _next(ws)['detail']


def test_bad_messages_keep_the_channel_open(client, frames):
    sid = client.post('/sessions/stream').json()['session_id']
    with client.websocket_connect(f'/sessions/{sid}/ws') as ws:
        for bad, match in [('{not json', 'malformed'), ('[1, 2]', 'malformed'),
                           ('{"type": "dance"}', 'unknown command'),
                           ('{"type": "prompt", "obj_id": 1}', 'at least one of'),
                           ('{"type": "undo"}', 'undo')]:
            ws.send_text(bad)
            msg = _next(ws)
            assert msg['type'] == 'error' and match in msg['detail'], (bad, msg)
        ws.send_bytes(b'GIF89a not a frame')
        assert _next(ws)['status'] == 415
        ws.send_bytes(jpeg(frames[0]))
        assert _next(ws)['frame'] == 0


def test_unknown_session_and_bad_queue_are_refused(client):
    with pytest.raises(WebSocketDisconnect) as e:
        with client.websocket_connect('/sessions/nope/ws') as ws:
            ws.receive_json()
    assert e.value.code == 4404
    sid = client.post('/sessions/stream').json()['session_id']
    with pytest.raises(WebSocketDisconnect) as e:
        with client.websocket_connect(f'/sessions/{sid}/ws?max_queue=0') as ws:
            ws.receive_json()
    assert e.value.code == 4422


def test_deleting_the_session_closes_its_channel(client):
    sid = client.post('/sessions/stream').json()['session_id']
    with client.websocket_connect(f'/sessions/{sid}/ws') as ws:
        assert client.delete(f'/sessions/{sid}').status_code == 204
        with pytest.raises(WebSocketDisconnect) as e:
            ws.receive_json()
    assert e.value.code == 4410
