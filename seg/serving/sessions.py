"""Sessions: one uploaded image / video / live stream with its predictor state, prompts and masks.

Ids are 128-bit random tokens (``secrets``): holding a session's id is what lets a client read
it, so one client cannot guess another's. The manager enforces a cap on live sessions and
expires a session ``ttl_s`` after its last use (a running propagation keeps it alive).
"""
import asyncio
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Set

import numpy as np

from seg.apis.image_predictor import FastSAM2ImagePredictor
from seg.apis.video_io import VideoSource, open_video
from seg.apis.video_predictor import VideoState

from .errors import ApiError
from .schemas import Progress

SessionKind = Literal['image', 'video', 'stream']


class SessionNotFound(ApiError):
    """An unknown, deleted or expired session id (404)."""

    def __init__(self, message: str) -> None:
        super().__init__(404, message)


class SessionCapReached(ApiError):
    """The server holds its maximum of sessions (503: retry later)."""

    def __init__(self, message: str) -> None:
        super().__init__(503, message)


@dataclass
class PromptEntry:
    """One prompt request as received (image pixels), kept for undo and for re-applying."""
    frame: int
    obj_id: int
    points: List[List[float]]
    labels: List[int]
    box: Optional[List[float]]
    text: Optional[str]
    mask: Optional[np.ndarray]  # bool [H, W]


@dataclass
class Session:
    """The server's state of one client's media.

    ``masks``: frame -> object id -> its record (COCO RLE ``segmentation``, ``area``, ``bbox``,
    ``score``), the latest result of a prompt or a propagation. ``history``: the prompts in
    arrival order (undo pops the last one). ``listeners``: queues of the WebSocket connections
    that receive this session's events.
    """
    id: str
    kind: SessionKind
    tmp_dir: Optional[Path] = None
    width: Optional[int] = None
    height: Optional[int] = None
    num_frames: Optional[int] = None
    image: Optional[np.ndarray] = None  # image sessions: the RGB image
    # images and video frames: the prompt path runs on the embedding of ``embedded_frame``
    predictor: Optional[FastSAM2ImagePredictor] = None
    embedded_frame: Optional[int] = None
    state: Optional[VideoState] = None  # video and stream sessions
    video_path: Optional[Path] = None  # video sessions: what frames and exports are read from
    fps: float = 10.0
    objects: List[int] = field(default_factory=list)
    history: List[PromptEntry] = field(default_factory=list)
    masks: Dict[int, Dict[int, Dict[str, Any]]] = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)
    task: Optional[asyncio.Task] = None
    listeners: Set[asyncio.Queue] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = field(default_factory=time.monotonic)
    _viewer: Optional[VideoSource] = None
    _viewer_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def read_frame(self, idx: int) -> np.ndarray:
        """RGB frame ``idx`` for display and export, from a decoder of its own (the model's
        worker uses the state's decoder; an OpenCV capture is not shared between threads)."""
        if self.kind == 'image':
            if idx != 0:
                raise IndexError(f'frame {idx} out of range: an image session has frame 0 only')
            return self.image
        if self.kind == 'stream':
            raise ValueError('a stream session keeps no frames; its frames came from the client')
        with self._viewer_lock:
            if self._viewer is None:
                self._viewer = open_video(self.video_path, cache_size=1)
            return self._viewer.read_frame(idx)

    def publish(self, event: Dict[str, Any]) -> None:
        """Send ``event`` to every WebSocket listener; a listener that does not keep up loses its
        oldest queued event (live data: the newest matters)."""
        for q in list(self.listeners):
            if q.full():
                q.get_nowait()
            q.put_nowait(event)

    def close(self) -> None:
        """Stop its propagation, release decoders and delete its files."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
        for q in list(self.listeners):
            if q.full():
                q.get_nowait()
            q.put_nowait(None)  # tells the connection the session is gone
        with self._viewer_lock:
            if self._viewer is not None:
                self._viewer.close()
        if self.state is not None and self.state.source is not None:
            self.state.source.close()
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)


class SessionManager:
    """Live sessions by id, with a cap and a time-to-live after the last use."""

    def __init__(self, max_sessions: int = 16, ttl_s: float = 900.0,
                 work_dir: Optional[Path] = None) -> None:
        if max_sessions < 1:
            raise ValueError(f'max_sessions must be >= 1, got {max_sessions}')
        if ttl_s <= 0:
            raise ValueError(f'session ttl must be > 0 s, got {ttl_s}')
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self.work_dir = work_dir
        self._sessions: Dict[str, Session] = {}
        self.created = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def reserve(self, kind: SessionKind) -> Session:
        """A new session (not yet listed: ``add`` it once its media are loaded), with its own
        temporary folder. Raises ``SessionCapReached`` when the cap is met after expiring."""
        self.purge_expired()
        if len(self._sessions) >= self.max_sessions:
            raise SessionCapReached(f'the server holds its maximum of {self.max_sessions} sessions; '
                                    'delete one or retry later')
        sid = secrets.token_urlsafe(16)
        tmp = None
        if self.work_dir is not None:
            tmp = self.work_dir / sid
            tmp.mkdir(parents=True)
        return Session(id=sid, kind=kind, tmp_dir=tmp)

    def add(self, session: Session) -> None:
        self.purge_expired()
        if len(self._sessions) >= self.max_sessions:
            session.close()
            raise SessionCapReached(f'the server holds its maximum of {self.max_sessions} sessions; '
                                    'delete one or retry later')
        session.last_used = time.monotonic()
        self._sessions[session.id] = session
        self.created += 1

    def get(self, sid: str) -> Session:
        """The live session ``sid`` (its clock restarts), or ``SessionNotFound``."""
        session = self._sessions.get(sid)
        if session is None or self._expired(session):
            if session is not None:
                self.delete(sid)
            raise SessionNotFound(f'unknown session id {sid[:8]}...: never created, deleted or '
                                  f'expired (sessions expire {self.ttl_s:.0f} s after their last use)')
        session.last_used = time.monotonic()
        return session

    def delete(self, sid: str) -> None:
        session = self._sessions.pop(sid, None)
        if session is None:
            raise SessionNotFound(f'unknown session id {sid[:8]}...')
        session.close()

    def expires_in(self, session: Session) -> float:
        return max(0.0, self.ttl_s - (time.monotonic() - session.last_used))

    def _expired(self, session: Session) -> bool:
        return not session.busy and time.monotonic() - session.last_used > self.ttl_s

    def purge_expired(self) -> int:
        """Delete the expired sessions; returns how many."""
        gone = [sid for sid, s in self._sessions.items() if self._expired(s)]
        for sid in gone:
            self.delete(sid)
        self.expired += len(gone)
        return len(gone)

    def close_all(self) -> None:
        for sid in list(self._sessions):
            self.delete(sid)

    def stats(self) -> Dict[str, Any]:
        return dict(live=len(self._sessions), max=self.max_sessions, ttl_s=self.ttl_s,
                    created=self.created, expired=self.expired)


__all__ = ['Session', 'SessionManager', 'SessionNotFound', 'SessionCapReached', 'PromptEntry']
