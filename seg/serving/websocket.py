"""The live channel of a session: ``WS /sessions/{id}/ws?max_queue=N``.

Client -> server:
  - binary message: the next frame of a stream session (JPEG / PNG bytes);
  - text message, JSON: ``{"type": "prompt", ...PromptRequest}``, ``{"type": "undo"}``,
    ``{"type": "remove_object", "obj_id": k}``, ``{"type": "masks", "frame": k}``,
    ``{"type": "propagate", ...PropagateRequest}``.

Server -> client (JSON): ``{"type": "masks", "frame", "objects": [...]}`` for every prompt
answer, every stream frame (with ``input_index``: which received frame, counted from 0, and
``dropped``: frames dropped so far) and every propagated frame (with ``progress``);
``{"type": "progress", ...}`` when a propagation ends; ``{"type": "objects", "objects"}``;
``{"type": "error", "status", "detail"}`` for a refused message (the channel stays open).

Backpressure: frames wait in a queue of ``max_queue``; a frame arriving when it is full drops the
OLDEST waiting frame (a live stream wants the newest). Commands are never dropped and keep their
order relative to the frames. Events for a client that reads too slowly drop the oldest, too.
"""
import asyncio
import json
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Tuple

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from .errors import ApiError
from .schemas import PromptRequest, PropagateRequest
from .service import SegmentationService

EVENT_QUEUE = 256  # events waiting to be sent to one client


def session_socket(service: SegmentationService, default_max_queue: int) -> Callable:
    """The WebSocket endpoint over ``service``."""

    async def endpoint(websocket: WebSocket, sid: str) -> None:
        try:
            session = service.sessions.get(sid)
        except ApiError as e:
            await websocket.close(code=4404, reason=e.message[:120])
            return
        raw = websocket.query_params.get('max_queue', str(default_max_queue))
        if not raw.isdigit() or int(raw) < 1:
            await websocket.close(code=4422, reason=f'max_queue must be an integer >= 1, got {raw!r}')
            return
        max_queue = int(raw)
        await websocket.accept()
        events: asyncio.Queue = asyncio.Queue(maxsize=EVENT_QUEUE)
        session.listeners.add(events)
        pending: Deque[Tuple[str, Any]] = deque()
        wake = asyncio.Event()
        counters = dict(received=0, dropped=0)

        async def send_events() -> None:
            while True:
                event = await events.get()
                if event is None:  # the session was deleted or expired
                    await websocket.close(code=4410, reason='session closed')
                    return
                await websocket.send_json(event)

        async def work() -> None:
            while True:
                await wake.wait()
                wake.clear()
                while pending:
                    kind, item = pending.popleft()
                    try:
                        if kind == 'frame':
                            index, data = item
                            result = await service.track_frame(session, data)
                            session.publish(dict(type='masks', input_index=index,
                                                 dropped=counters['dropped'], **result))
                        else:
                            await _command(service, session, item)
                    except ApiError as e:
                        session.publish(dict(type='error', status=e.status, detail=e.message))

        sender, worker = asyncio.create_task(send_events()), asyncio.create_task(work())
        try:
            while True:
                message = await websocket.receive()
                if message['type'] == 'websocket.disconnect':
                    break
                session.last_used = time.monotonic()  # a live connection keeps its session
                if message.get('bytes') is not None:
                    frames = [i for i, (k, _) in enumerate(pending) if k == 'frame']
                    if len(frames) >= max_queue:
                        del pending[frames[0]]  # drop the oldest waiting frame
                        counters['dropped'] += 1
                    pending.append(('frame', (counters['received'], message['bytes'])))
                    counters['received'] += 1
                else:
                    try:
                        command = json.loads(message.get('text') or '')
                        if not isinstance(command, dict) or 'type' not in command:
                            raise ValueError('a command is a JSON object with a "type"')
                    except ValueError as e:
                        await events.put(dict(type='error', status=422, detail=f'malformed message: {e}'))
                        continue
                    pending.append(('command', command))
                wake.set()
        except WebSocketDisconnect:
            pass
        finally:
            session.listeners.discard(events)
            sender.cancel()
            worker.cancel()

    return endpoint


async def _command(service: SegmentationService, session, command: Dict[str, Any]) -> None:
    """Run one JSON command; its answer goes to the session's listeners."""
    kind = command.pop('type')
    try:
        if kind == 'prompt':
            result = await service.add_prompt(session, PromptRequest(**command))
            session.publish(dict(type='masks', **result))
        elif kind == 'undo':
            session.publish(dict(type='masks', **await service.undo(session)))
        elif kind == 'masks':
            session.publish(dict(type='masks', **service.frame_masks(session, int(command.get('frame', 0)))))
        elif kind == 'remove_object':
            objects = await service.remove_object(session, int(command.get('obj_id', -1)))
            session.publish(dict(type='objects', objects=objects))
        elif kind == 'propagate':
            progress = await service.propagate(session, PropagateRequest(**command))
            session.publish(dict(type='progress', **progress.model_dump()))
        else:
            raise ApiError(422, f'unknown command type {kind!r}: prompt, undo, masks, '
                                'remove_object or propagate')
    except ValidationError as e:
        raise ApiError(422, f'{kind}: ' + '; '.join(
            f'{".".join(str(p) for p in err["loc"])}: {err["msg"]}' for err in e.errors())) from None
    except (TypeError, ValueError) as e:
        raise ApiError(422, f'{kind}: {e}') from None


__all__ = ['session_socket']
