"""What the endpoints do: sessions from uploads / server paths / streams, prompts with undo,
object removal, propagation with progress, masks and exports. Transport-free (the REST routes
and the WebSocket both call it); the model work runs on the engine's worker thread.

Images and the frames of videos are prompted through the image predictor's batched prompt path
(``ModelEngine.predict``) on the frame's embedding; a video's tracker gets the prompts when a
propagation starts. Streams are prompted on their tracker directly.

Prompt semantics: the prompts of one (frame, object) accumulate over requests, clicks adding to
the earlier clicks, a box / text / mask replacing the earlier one of its kind (a mask also drops
the earlier clicks and box). Every request is kept in the session's history; the object's
prompt on that frame is rebuilt from it, so undo is "pop the last request and rebuild".
"""
import asyncio
import json
import logging
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_utils

from seg.apis.demo_runner import VideoOutputs
from seg.apis.video_io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from seg.utils.rle import mask_record

from .engine import ImagePrompt, ModelEngine
from .errors import ApiError, bad_input_is_422
from .media import Limits, check_kind, check_size, decode_image, unpack_frames, video_suffix
from .schemas import RLE, Progress, PromptRequest, PropagateRequest
from .sessions import PromptEntry, Session, SessionManager

logger = logging.getLogger('fastsam2.serving')
EXPORT_FORMATS = ('davis', 'coco', 'mp4')


class SegmentationService:
    """The server's operations on sessions (see the module docstring).

    Args:
        engine: the model and its batched calls.
        sessions: the live sessions.
        limits: upload caps.
        allowed_dirs: roots under which ``create_from_path`` may open media (none: disabled).
    """

    def __init__(self, engine: ModelEngine, sessions: SessionManager, limits: Limits,
                 allowed_dirs: Sequence[Path] = ()) -> None:
        self.engine = engine
        self.sessions = sessions
        self.limits = limits
        self.allowed_dirs = [Path(d).resolve() for d in allowed_dirs]

    # ------------------------------------------------------------------ sessions
    async def create_from_upload(self, data: bytes, name: str, content_type: Optional[str]) -> Session:
        """A session from uploaded bytes: a JPEG / PNG image, a zip of JPEG / PNG frames, or an
        MP4 / WebM video."""
        if len(data) > self.limits.max_upload_bytes:
            raise ApiError(413, f'{name}: upload exceeds the cap of {self.limits.max_upload_bytes} bytes')
        if not data:
            raise ApiError(422, f'{name}: empty upload')
        kind = check_kind(data, name, content_type)
        session = self.sessions.reserve('image' if kind in ('jpeg', 'png') else 'video')
        try:
            if kind in ('jpeg', 'png'):
                rgb = await asyncio.to_thread(decode_image, data, name, self.limits)
                await self._load_image(session, rgb)
            elif kind == 'zip':
                folder = session.tmp_dir / 'frames'
                await asyncio.to_thread(unpack_frames, data, name, folder, self.limits)
                await self._load_video(session, folder, name)
            else:
                path = session.tmp_dir / f'upload{video_suffix(kind)}'
                await asyncio.to_thread(path.write_bytes, data)
                await self._load_video(session, path, name)
            self.sessions.add(session)
        except BaseException:
            session.close()
            raise
        return session

    async def create_from_path(self, raw: str) -> Session:
        """A session from a server-side image, video file or frame folder under an allowed root."""
        path = self._allowed(raw)
        suffix = path.suffix.lower()
        if path.is_file() and suffix in IMAGE_EXTENSIONS:
            data = await asyncio.to_thread(path.read_bytes)
            if len(data) > self.limits.max_upload_bytes:
                raise ApiError(413, f'{raw}: file exceeds the cap of {self.limits.max_upload_bytes} bytes')
            check_kind(data, raw, None)
            rgb = await asyncio.to_thread(decode_image, data, raw, self.limits)
            session = self.sessions.reserve('image')
            loader = self._load_image(session, rgb)
        elif path.is_dir() or suffix in VIDEO_EXTENSIONS:
            session = self.sessions.reserve('video')
            loader = self._load_video(session, path, raw)
        else:
            raise ApiError(415, f'{raw}: not an image ({"/".join(IMAGE_EXTENSIONS)}), a video '
                                f'({"/".join(VIDEO_EXTENSIONS)}) or a frame folder')
        try:
            await loader
            self.sessions.add(session)
        except BaseException:
            session.close()
            raise
        return session

    async def create_stream(self) -> Session:
        """A live session: frames come over its WebSocket and are tracked as they arrive."""
        session = self.sessions.reserve('stream')
        session.state = self.engine.video.start_stream()
        self.sessions.add(session)
        return session

    def _allowed(self, raw: str) -> Path:
        """``raw`` (absolute, or relative to an allowed root) resolved, symlinks followed, inside
        an allowed root; 403 otherwise, without telling whether it exists."""
        if not self.allowed_dirs:
            raise ApiError(403, 'opening server paths is disabled (start the server with --allow-dir)')
        if '\x00' in raw:
            raise ApiError(422, 'path: contains a NUL byte')
        for root in self.allowed_dirs:
            candidate = Path(raw) if Path(raw).is_absolute() else root / raw
            resolved = candidate.resolve()
            if resolved.is_relative_to(root) and resolved.exists():
                return resolved
        raise ApiError(403, f'{raw}: not an existing path under the allowed directories')

    async def _load_image(self, session: Session, rgb: np.ndarray) -> None:
        predictor = self.engine.new_image_predictor()
        await self.engine.set_image(predictor, rgb)
        session.image, session.predictor, session.embedded_frame = rgb, predictor, 0
        session.height, session.width = rgb.shape[:2]
        session.num_frames = 1

    async def _load_video(self, session: Session, path: Path, name: str) -> None:
        with bad_input_is_422(name):
            state = await self.engine.call(lambda: self.engine.video.init_state(str(path)))
        session.state, session.video_path = state, path
        session.height, session.width = state.video_height, state.video_width
        session.num_frames = state.num_frames
        session.fps = float(getattr(state.source, 'fps', 0) or 10.0)
        check_size((state.video_height, state.video_width), name, self.limits)
        if state.num_frames > self.limits.max_frames:
            raise ApiError(422, f'{name}: {state.num_frames} frames exceed the cap of '
                                f'{self.limits.max_frames}')

    def info(self, session: Session) -> Dict[str, Any]:
        return dict(session_id=session.id, kind=session.kind, width=session.width,
                    height=session.height, num_frames=session.num_frames,
                    objects=list(session.objects), prompted_frames=sorted({e.frame for e in session.history}),
                    propagation=session.progress, expires_in_s=self.sessions.expires_in(session))

    # ------------------------------------------------------------------ prompts
    async def add_prompt(self, session: Session, req: PromptRequest) -> Dict[str, Any]:
        """Add ``req`` to its object's prompts on its frame; returns that frame's masks."""
        self._check_frame(session, req.frame)
        self._check_inside(session, req)
        entry = PromptEntry(req.frame, req.obj_id, [list(p) for p in req.points], list(req.labels),
                            None if req.box is None else list(req.box), req.text,
                            None if req.mask is None else self._decode_mask(session, req.mask))
        async with session.lock:
            self._check_idle(session)
            new_object = req.obj_id not in session.objects
            session.history.append(entry)
            if new_object:
                session.objects.append(req.obj_id)
            try:
                await self._apply(session, req.frame, req.obj_id)
            except BaseException:
                session.history.pop()
                if new_object:
                    session.objects.remove(req.obj_id)
                raise
        return self.frame_masks(session, req.frame)

    async def undo(self, session: Session) -> Dict[str, Any]:
        """Drop the last prompt request; returns the masks of its frame."""
        if session.kind == 'stream':
            raise ApiError(422, 'undo: a stream has already tracked with its prompts; remove the '
                                'object or prompt it again')
        async with session.lock:
            self._check_idle(session)
            if not session.history:
                raise ApiError(409, 'undo: no prompt to undo')
            entry = session.history.pop()
            try:
                await self._apply(session, entry.frame, entry.obj_id)
            except BaseException:
                session.history.append(entry)
                raise
        return self.frame_masks(session, entry.frame)

    async def remove_object(self, session: Session, obj_id: int) -> List[int]:
        """Forget an object, its prompts and masks; returns the remaining object ids."""
        async with session.lock:
            self._check_idle(session)
            if obj_id not in session.objects:
                raise ApiError(404, f'unknown object id {obj_id}; the session has objects '
                                    f'{session.objects}')
            state = session.state
            if session.kind == 'stream' and obj_id in state.obj_ids:
                await self.engine.call(lambda: self.engine.video.remove_object(state, obj_id))
            session.objects.remove(obj_id)
            session.history = [e for e in session.history if e.obj_id != obj_id]
            for records in session.masks.values():
                records.pop(obj_id, None)
        return list(session.objects)

    def _fold(self, session: Session, frame: int, obj_id: int) -> Optional[ImagePrompt]:
        """The object's effective prompt on ``frame`` from the history (None: no prompts)."""
        entries = [e for e in session.history if e.frame == frame and e.obj_id == obj_id]
        if not entries:
            return None
        prompt = ImagePrompt()
        for e in entries:
            if e.mask is not None:
                prompt = ImagePrompt(mask=e.mask, text=prompt.text)
            prompt.points = prompt.points + e.points
            prompt.labels = prompt.labels + e.labels
            prompt.box = e.box if e.box is not None else prompt.box
            prompt.text = e.text or prompt.text
        return prompt

    async def _apply(self, session: Session, frame: int, obj_id: int) -> None:
        """Re-decode ``obj_id`` on ``frame`` from its effective prompt and store its mask.

        Images and video frames take the image predictor's batched prompt path on the frame's
        embedding (interactive speed; the video's tracker is told the prompts when propagation
        starts, ``_sync_prompts``). A stream's prompts act on its tracker at once."""
        prompt = self._fold(session, frame, obj_id)
        if session.kind == 'stream':
            with bad_input_is_422(f'object {obj_id} on frame {frame}'):
                records = await self.engine.call(lambda: self._prompt_stream(session, obj_id, prompt))
            session.masks = {frame: records}
            return
        records = session.masks.setdefault(frame, {})
        if prompt is None:
            records.pop(obj_id, None)
            return
        await self._embed(session, frame)
        with bad_input_is_422(f'object {obj_id} on frame {frame}'):
            mask, score = await self.engine.predict(session.predictor, prompt)
        records[obj_id] = dict(mask_record(mask), score=score)

    async def _embed(self, session: Session, frame: int) -> None:
        """The session's image predictor holds the embedding of ``frame`` (batched encode)."""
        if session.embedded_frame == frame:
            return
        rgb = await asyncio.to_thread(session.read_frame, frame)
        if session.predictor is None:
            session.predictor = self.engine.new_image_predictor()
        session.embedded_frame = None
        await self.engine.set_image(session.predictor, rgb)
        session.embedded_frame = frame

    def _prompt_stream(self, session: Session, obj_id: int, prompt: ImagePrompt
                       ) -> Dict[int, Dict[str, Any]]:
        """Worker thread: prompt an object on a stream's current frame -> every object's record."""
        return _records(*self._feed(session.state, session.state.frame_idx, obj_id, prompt))

    def _feed(self, state, frame: int, obj_id: int, prompt: ImagePrompt):
        """Worker thread: give the video predictor an object's prompt on a frame (mask first,
        then clicks / box added to it, then text) -> ``(obj_ids, masks)``: every object's
        mask on the frame."""
        video = self.engine.video
        out = None
        if prompt.mask is not None:
            out = video.add_new_mask(state, frame, obj_id, prompt.mask)
        if prompt.points or prompt.box is not None:
            out = video.add_new_points_or_box(
                state, frame, obj_id, points=prompt.points or None, labels=prompt.labels or None,
                box=prompt.box, clear_old_points=prompt.mask is None)
        if prompt.text:
            out = video.add_text_prompt(state, frame, obj_id, prompt.text)
        return out[1], out[2]

    def _sync_prompts(self, session: Session) -> None:
        """Worker thread: the video state gets exactly the session's effective prompts."""
        self.engine.video.reset_state(session.state)
        for frame, obj_id in sorted({(e.frame, e.obj_id) for e in session.history}):
            self._feed(session.state, frame, obj_id, self._fold(session, frame, obj_id))

    # ------------------------------------------------------------------ streams
    async def track_frame(self, session: Session, data: bytes) -> Dict[str, Any]:
        """A stream's next frame (JPEG / PNG bytes) -> its masks."""
        if session.kind != 'stream':
            raise ApiError(422, f'frames over the WebSocket need a stream session; this one is '
                                f'a {session.kind} (create one with POST /sessions/stream)')
        if len(data) > self.limits.max_upload_bytes:
            raise ApiError(413, f'stream frame exceeds the cap of {self.limits.max_upload_bytes} bytes')
        if check_kind(data, 'stream frame', None) not in ('jpeg', 'png'):
            raise ApiError(415, 'stream frame: send JPEG or PNG bytes')
        rgb = await asyncio.to_thread(decode_image, data, 'stream frame', self.limits)
        video = self.engine.video

        def step() -> Tuple[int, Dict[int, Dict[str, Any]]]:
            obj_ids, masks = video.track(session.state, rgb)
            return session.state.frame_idx, _records(obj_ids, masks)

        async with session.lock:
            with bad_input_is_422('stream frame'):
                frame, records = await self.engine.call(step)
            session.height, session.width = rgb.shape[:2]
            session.num_frames = frame + 1
            session.masks = {frame: records}
            # prompts belong to their frame: a stream's history holds the current frame's only
            session.history = [e for e in session.history if e.frame == frame]
        return self.frame_masks(session, frame)

    # ------------------------------------------------------------------ propagation
    async def propagate(self, session: Session, req: PropagateRequest) -> Progress:
        """Start tracking (a background task; ``req.wait``: until it ends)."""
        if session.kind != 'video':
            raise ApiError(422, f'propagate: needs a video session, this one is a {session.kind} '
                                '(an image has one frame; a stream is tracked frame by frame)')
        async with session.lock:
            self._check_idle(session)
            if not session.history:
                raise ApiError(422, 'propagate: no prompts yet; prompt an object on some frame first')
            if req.start_frame is not None:
                self._check_frame(session, req.start_frame)
            prompted = sorted({e.frame for e in session.history})
            runs = {'forward': [False], 'backward': [True], 'both': [False, True]}[req.direction]
            plan = []
            for reverse in runs:
                start = req.start_frame if req.start_frame is not None else (
                    prompted[-1] if reverse else prompted[0])
                plan.append((reverse, start, _frames_in_run(start, req.max_frames, reverse,
                                                            session.num_frames)))
            session.progress = Progress(state='running', total=sum(n for *_, n in plan))
            session.task = asyncio.create_task(self._propagate(session, plan, req.max_frames))
        if req.wait:
            await asyncio.shield(session.task)
        return session.progress

    async def _propagate(self, session: Session, plan: List[Tuple[bool, int, int]],
                         max_frames: Optional[int]) -> None:
        progress = session.progress
        try:
            await self.engine.call(lambda: self._sync_prompts(session))
            for reverse, start, _ in plan:
                frames = self.engine.video.propagate_in_video(session.state, start, max_frames, reverse)
                try:
                    while True:
                        item = await self.engine.call(lambda: _next_records(frames))
                        if item is None:
                            break
                        frame, records = item
                        session.masks[frame] = records
                        progress.done += 1
                        session.last_used = time.monotonic()
                        session.publish(dict(type='masks', frame=frame, objects=_objects(records),
                                             progress=progress.model_dump()))
                finally:
                    # on the worker, after any step still queued there (a generator is not
                    # closed while it runs)
                    self.engine.batcher.submit('call', frames.close)
            progress.state = 'done'
        except asyncio.CancelledError:
            progress.state = 'cancelled'
            raise
        except Exception as e:  # noqa: BLE001  (reported in the progress, the server goes on)
            logger.exception('propagation of session %s failed', session.id[:8])
            progress.state, progress.error = 'failed', f'{type(e).__name__}: {e}'
        finally:
            session.publish(dict(type='progress', **progress.model_dump()))

    # ------------------------------------------------------------------ results
    def frame_masks(self, session: Session, frame: int) -> Dict[str, Any]:
        self._check_frame(session, frame)
        return dict(frame=frame, objects=_objects(session.masks.get(frame, {})))

    async def frame_jpeg(self, session: Session, idx: int) -> bytes:
        self._check_frame(session, idx)
        if session.kind == 'stream':
            raise ApiError(422, 'a stream session keeps no frames')

        def encode() -> bytes:
            ok, buf = cv2.imencode('.jpg', session.read_frame(idx)[..., ::-1],
                                   [cv2.IMWRITE_JPEG_QUALITY, 90])
            if not ok:
                raise RuntimeError(f'cannot encode frame {idx} as JPEG')
            return buf.tobytes()

        return await asyncio.to_thread(encode)

    async def export(self, session: Session, fmt: str) -> Tuple[Path, str]:
        """Write the session's masks as ``davis`` (zip of palette PNGs, one per frame), ``coco``
        (json of RLE records per frame and object) or ``mp4`` (overlay video); returns the file
        (in a folder of its own under the session's, removed after sending) and its media type."""
        if fmt not in EXPORT_FORMATS:
            raise ApiError(422, f'export format must be one of {list(EXPORT_FORMATS)}, got {fmt!r}')
        if session.kind == 'stream':
            raise ApiError(422, 'export: a stream keeps its current frame only; nothing to export')
        masks = {f: dict(r) for f, r in session.masks.items()}
        meta = dict(width=session.width, height=session.height, num_frames=session.num_frames,
                    objects=list(session.objects), model=self.engine.info)
        out_dir = Path(tempfile.mkdtemp(prefix='export-', dir=session.tmp_dir))
        try:
            path = await asyncio.to_thread(_write_export, session, masks, meta, fmt, out_dir)
        except BaseException:
            shutil.rmtree(out_dir, ignore_errors=True)
            raise
        media = {'davis': 'application/zip', 'coco': 'application/json', 'mp4': 'video/mp4'}[fmt]
        return path, media

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _check_idle(session: Session) -> None:
        if session.busy:
            raise ApiError(409, 'the session is propagating; wait for it to finish '
                                '(GET /sessions/{id}/propagate) before changing prompts')

    @staticmethod
    def _check_frame(session: Session, frame: int) -> None:
        if session.kind == 'stream':
            if session.num_frames is None:
                raise ApiError(422, 'the stream has no frame yet: send one over its WebSocket first')
            if frame != session.num_frames - 1:
                raise ApiError(422, f'a stream takes prompts on its current frame '
                                    f'{session.num_frames - 1}, got frame {frame}')
            return
        if not 0 <= frame < session.num_frames:
            raise ApiError(422, f'frame {frame} out of range: the {session.kind} has '
                                f'{session.num_frames} frame(s)')

    @staticmethod
    def _check_inside(session: Session, req: PromptRequest) -> None:
        w, h = session.width, session.height
        for x, y in req.points:
            if not (0 <= x <= w and 0 <= y <= h):
                raise ApiError(422, f'point ({x}, {y}) lies outside the {w}x{h} image')
        if req.box is not None:
            x1, y1, x2, y2 = req.box
            if not (0 <= x1 and 0 <= y1 and x2 <= w and y2 <= h):
                raise ApiError(422, f'box {list(req.box)} lies outside the {w}x{h} image')

    @staticmethod
    def _decode_mask(session: Session, rle: RLE) -> np.ndarray:
        if tuple(rle.size) != (session.height, session.width):
            raise ApiError(422, f'mask: RLE size {list(rle.size)} but the image is '
                                f'[{session.height}, {session.width}] (height, width)')
        try:
            coded = (dict(size=list(rle.size), counts=rle.counts.encode('ascii'))
                     if isinstance(rle.counts, str)
                     else mask_utils.frPyObjects(dict(size=list(rle.size), counts=rle.counts),
                                                 *rle.size))
            mask = mask_utils.decode(coded).astype(bool)
        except Exception as e:  # noqa: BLE001  (pycocotools raises several kinds)
            raise ApiError(422, f'mask: not a valid COCO RLE ({e})') from None
        if mask.shape != (session.height, session.width) or not mask.any():
            raise ApiError(422, 'mask: empty or of the wrong size; remove the object instead')
        return mask


def _records(obj_ids: Sequence[int], masks) -> Dict[int, Dict[str, Any]]:
    """Mask records (COCO RLE, area, bbox) per object from the video predictor's ``[K, 1, H,
    W]`` masks (bool, or logits)."""
    return {int(o): mask_record(m) for o, m in zip(obj_ids, (masks[:, 0] > 0).cpu().numpy())}


def _next_records(frames) -> Optional[Tuple[int, Dict[int, Dict[str, Any]]]]:
    """Worker thread: the next propagated frame's records, None at the end."""
    item = next(frames, None)
    if item is None:
        return None
    frame, obj_ids, masks = item
    return frame, _records(obj_ids, masks)


def _objects(records: Dict[int, Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [dict(obj_id=o, **r) for o, r in sorted(records.items())]


def _frames_in_run(start: int, max_frames: Optional[int], reverse: bool, num_frames: int) -> int:
    if reverse:
        return start + 1 if max_frames is None else min(max_frames, start) + 1
    left = num_frames - start
    return left if max_frames is None else min(max_frames + 1, left)


def _write_export(session: Session, masks: Dict[int, Dict[int, Dict[str, Any]]],
                  meta: Dict[str, Any], fmt: str, out_dir: Path) -> Path:
    """Worker thread (not the model's): every frame through ``VideoOutputs`` (the demo's
    writers: palette PNGs, overlay MP4, RLE records), then the requested file."""
    h, w = session.height, session.width
    outputs = VideoOutputs(out_dir / 'masks', (h, w), session.fps)
    try:
        for f in range(session.num_frames):
            records = masks.get(f, {})
            ids = sorted(records)
            stack = (np.stack([mask_utils.decode(dict(records[o]['segmentation'],
                                                      counts=records[o]['segmentation']['counts'].encode('ascii')))
                               for o in ids]).astype(bool) if ids else np.zeros((0, h, w), bool))
            outputs.add(f, session.read_frame(f), ids, stack)
    except BaseException:
        outputs.close(keep=False)
        raise
    outputs.close()
    if fmt == 'mp4':
        return outputs.mp4
    if fmt == 'coco':
        path = out_dir / 'masks.json'
        path.write_text(json.dumps(dict(meta, frames=outputs.frames)))
        return path
    path = out_dir / 'masks_davis.zip'
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as z:
        for png in sorted(outputs.png_dir.glob('*.png')):
            z.write(png, png.name)
    return path


__all__ = ['SegmentationService', 'EXPORT_FORMATS']
