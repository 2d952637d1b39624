"""The FastAPI application: REST endpoints, the per-session WebSocket and the browser UI.

``create_app(engine, settings)`` builds it; ``tools/serve.py`` runs it with uvicorn. Endpoints
(all JSON unless said; errors are ``{"detail": message}`` with a 4xx status, 500 for a bug,
which never stops the server):

    GET    /health                              status, sessions, batcher statistics
    GET    /model                               the model's config, checkpoint, device, size
    POST   /sessions                            multipart ``file``: JPEG / PNG / zip of frames / MP4
    POST   /sessions/path                       {"path": ...} under an --allow-dir root
    POST   /sessions/stream                     a live session fed over the WebSocket
    GET    /sessions/{id}                       info (size, frames, objects, propagation)
    DELETE /sessions/{id}
    GET    /sessions/{id}/frames/{idx}          the frame as JPEG
    POST   /sessions/{id}/prompts               PromptRequest -> that frame's masks (COCO RLE)
    POST   /sessions/{id}/undo                  drop the last prompt -> its frame's masks
    DELETE /sessions/{id}/objects/{obj_id}      remove an object -> the remaining ids
    GET    /sessions/{id}/masks?frame=k         the masks of frame k
    POST   /sessions/{id}/propagate             PropagateRequest -> progress (202, or 200 with wait)
    GET    /sessions/{id}/propagate             progress
    GET    /sessions/{id}/export?format=davis|coco|mp4
    WS     /sessions/{id}/ws?max_queue=N        see ``websocket.py``
    GET    /  ->  /ui/                          the browser UI (static files, no CDN)
"""
import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask

from .engine import ModelEngine
from .errors import ApiError
from .media import Limits
from .schemas import FrameMasks, PathRequest, Progress, PromptRequest, PropagateRequest, SessionInfo
from .service import SegmentationService
from .sessions import SessionManager
from .websocket import session_socket

logger = logging.getLogger('fastsam2.serving')
STATIC_DIR = Path(__file__).with_name('static')
# multipart framing around an upload: the body may exceed the file cap by this much
MULTIPART_OVERHEAD = 64 << 10


@dataclass
class ServerSettings:
    """Limits and policies of a server.

    Attributes:
        limits: upload caps (bytes, unpacked bytes, frames, resolution).
        max_sessions / session_ttl_s: live-session cap and idle time to expiry.
        allowed_dirs: roots that ``POST /sessions/path`` may open (empty: disabled).
        ws_max_queue: default WebSocket queue of live frames (older ones are dropped).
        reap_interval_s: how often expired sessions are removed.
    """
    limits: Limits = field(default_factory=Limits)
    max_sessions: int = 16
    session_ttl_s: float = 900.0
    allowed_dirs: List[Path] = field(default_factory=list)
    ws_max_queue: int = 2
    reap_interval_s: float = 30.0


def create_app(engine: ModelEngine, settings: Optional[ServerSettings] = None) -> FastAPI:
    """The server over ``engine`` (its batcher is started and stopped with the app)."""
    settings = settings or ServerSettings()
    work_dir = Path(tempfile.mkdtemp(prefix='fastsam2-serve-'))
    sessions = SessionManager(settings.max_sessions, settings.session_ttl_s, work_dir)
    service = SegmentationService(engine, sessions, settings.limits, settings.allowed_dirs)
    started = time.time()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        engine.batcher.start()

        async def reap() -> None:
            while True:
                await asyncio.sleep(settings.reap_interval_s)
                sessions.purge_expired()

        reaper = asyncio.create_task(reap())
        try:
            yield
        finally:
            reaper.cancel()
            sessions.close_all()
            engine.batcher.stop()
            shutil.rmtree(work_dir, ignore_errors=True)

    app = FastAPI(title='FastSAM2 interactive segmentation', lifespan=lifespan)
    app.state.service = service
    app.state.settings = settings

    # ------------------------------------------------------------------ errors
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({'detail': exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        # one readable line per problem: "body.points.0: ..." as well as pydantic's list
        lines = [f'{".".join(str(p) for p in e["loc"])}: {e["msg"]}' for e in exc.errors()]
        return JSONResponse({'detail': '; '.join(lines), 'errors': _jsonable(exc.errors())},
                            status_code=422)

    @app.middleware('http')
    async def guard(request: Request, call_next):
        length = request.headers.get('content-length')
        cap = settings.limits.max_upload_bytes + MULTIPART_OVERHEAD
        if length is not None and length.isdigit() and int(length) > cap:
            return JSONResponse({'detail': f'request body of {length} bytes exceeds the upload '
                                           f'cap of {settings.limits.max_upload_bytes} bytes'},
                                status_code=413)
        try:
            return await call_next(request)
        except Exception as e:  # noqa: BLE001  (a bug in one request must not stop the server)
            logger.exception('%s %s failed', request.method, request.url.path)
            return JSONResponse({'detail': f'internal error: {type(e).__name__}: {e}'},
                                status_code=500)

    # ------------------------------------------------------------------ server
    @app.get('/health')
    async def health() -> dict:
        return dict(status='ok', uptime_s=time.time() - started, sessions=sessions.stats(),
                    batcher=engine.batcher.stats())

    @app.get('/model')
    async def model_info() -> dict:
        return engine.info

    # ------------------------------------------------------------------ sessions
    @app.post('/sessions', status_code=201, response_model=SessionInfo)
    async def create_session(file: UploadFile = File(...)) -> dict:
        cap = settings.limits.max_upload_bytes
        data = await file.read(cap + 1)
        if len(data) > cap:
            raise ApiError(413, f'{file.filename}: upload exceeds the cap of {cap} bytes')
        session = await service.create_from_upload(data, file.filename or 'upload', file.content_type)
        return service.info(session)

    @app.post('/sessions/path', status_code=201, response_model=SessionInfo)
    async def create_from_path(req: PathRequest) -> dict:
        return service.info(await service.create_from_path(req.path))

    @app.post('/sessions/stream', status_code=201, response_model=SessionInfo)
    async def create_stream() -> dict:
        return service.info(await service.create_stream())

    @app.get('/sessions/{sid}', response_model=SessionInfo)
    async def get_session(sid: str) -> dict:
        return service.info(sessions.get(sid))

    @app.delete('/sessions/{sid}', status_code=204)
    async def delete_session(sid: str) -> Response:
        sessions.delete(sid)
        return Response(status_code=204)

    @app.get('/sessions/{sid}/frames/{idx}')
    async def frame(sid: str, idx: int) -> Response:
        data = await service.frame_jpeg(sessions.get(sid), idx)
        return Response(data, media_type='image/jpeg', headers={'Cache-Control': 'private, max-age=600'})

    # ------------------------------------------------------------------ prompts and masks
    @app.post('/sessions/{sid}/prompts', response_model=FrameMasks)
    async def add_prompt(sid: str, req: PromptRequest) -> dict:
        return await service.add_prompt(sessions.get(sid), req)

    @app.post('/sessions/{sid}/undo', response_model=FrameMasks)
    async def undo(sid: str) -> dict:
        return await service.undo(sessions.get(sid))

    @app.delete('/sessions/{sid}/objects/{obj_id}')
    async def remove_object(sid: str, obj_id: int) -> dict:
        return dict(objects=await service.remove_object(sessions.get(sid), obj_id))

    @app.get('/sessions/{sid}/masks', response_model=FrameMasks)
    async def masks(sid: str, frame: int = Query(0)) -> dict:
        return service.frame_masks(sessions.get(sid), frame)

    @app.post('/sessions/{sid}/propagate', response_model=Progress)
    async def propagate(sid: str, req: PropagateRequest) -> JSONResponse:
        progress = await service.propagate(sessions.get(sid), req)
        return JSONResponse(progress.model_dump(), status_code=200 if req.wait else 202)

    @app.get('/sessions/{sid}/propagate', response_model=Progress)
    async def propagation(sid: str) -> Progress:
        return sessions.get(sid).progress

    @app.get('/sessions/{sid}/export')
    async def export(sid: str, format: str = Query('davis')) -> FileResponse:  # noqa: A002
        session = sessions.get(sid)
        path, media = await service.export(session, format)
        return FileResponse(path, media_type=media, filename=f'fastsam2_{sid[:8]}_{path.name}',
                            background=BackgroundTask(shutil.rmtree, path.parent, True))

    app.add_api_websocket_route('/sessions/{sid}/ws', session_socket(service, settings.ws_max_queue))

    # ------------------------------------------------------------------ UI
    @app.get('/', include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse('/ui/')

    app.mount('/ui', StaticFiles(directory=STATIC_DIR, html=True), name='ui')
    return app


def _jsonable(errors: list) -> list:
    """pydantic's error list without the exception objects it may carry in ``ctx``."""
    return [{k: (str(v) if k in ('ctx', 'input') else v) for k, v in e.items()} for e in errors]


__all__ = ['create_app', 'ServerSettings']
