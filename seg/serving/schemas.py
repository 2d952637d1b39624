"""Request and response bodies of the REST API and the WebSocket messages (pydantic): a body that
does not fit is answered 422 with the offending field named, before any model work."""
from typing import List, Literal, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from seg.evaluation.davis import VOID_ID

MAX_OBJ_ID = VOID_ID - 1  # object ids end up in DAVIS palette PNGs (255 is void)
MAX_POINTS = 64


class _Strict(BaseModel):
    # unknown keys are typos: reject them; NaN / inf are never coordinates
    model_config = ConfigDict(extra='forbid', allow_inf_nan=False)


class RLE(_Strict):
    """A COCO RLE mask: ``size`` = [height, width], ``counts`` compressed (string) or a list."""
    size: Tuple[int, int]
    counts: str | List[int]


class PromptRequest(_Strict):
    """A prompt for object ``obj_id`` on ``frame`` (image pixels). Clicks add to the object's
    earlier clicks on that frame; a box, text or mask replaces the earlier one of its kind (a
    mask also drops the earlier clicks and box)."""
    frame: int = Field(0, ge=0)
    obj_id: int = Field(ge=1, le=MAX_OBJ_ID)
    points: List[Tuple[float, float]] = Field(default_factory=list, max_length=MAX_POINTS)
    labels: List[Literal[0, 1]] = Field(default_factory=list, max_length=MAX_POINTS)
    box: Optional[Tuple[float, float, float, float]] = None
    text: Optional[str] = Field(None, min_length=1, max_length=200)
    mask: Optional[RLE] = None

    @model_validator(mode='after')
    def _consistent(self) -> 'PromptRequest':
        if len(self.points) != len(self.labels):
            raise ValueError(f'{len(self.points)} points but {len(self.labels)} labels '
                             '(one label per point: 1 positive, 0 negative)')
        if not (self.points or self.box or self.text or self.mask):
            raise ValueError('give at least one of points (with labels), box, text, mask')
        if self.box is not None and (self.box[2] < self.box[0] or self.box[3] < self.box[1]):
            raise ValueError(f'box must be [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1, got '
                             f'{list(self.box)}')
        return self


class PropagateRequest(_Strict):
    """Track the prompted objects from ``start_frame`` (default: the first prompted frame, the
    last one backwards) over ``max_frames`` more frames (default: to the end), ``direction``
    forward, backward or both. ``wait``: answer when done instead of at once (202)."""
    start_frame: Optional[int] = Field(None, ge=0)
    max_frames: Optional[int] = Field(None, ge=0)
    direction: Literal['forward', 'backward', 'both'] = 'forward'
    wait: bool = False


class PathRequest(_Strict):
    """A server-side image, video file or frame folder under one of the allowed roots."""
    path: str = Field(min_length=1, max_length=1024)


class ObjectMask(BaseModel):
    obj_id: int
    segmentation: RLE
    area: int
    bbox: List[float]  # COCO xywh
    score: Optional[float] = None


class FrameMasks(BaseModel):
    frame: int
    objects: List[ObjectMask]


class Progress(BaseModel):
    state: Literal['idle', 'running', 'done', 'failed', 'cancelled'] = 'idle'
    done: int = 0
    total: int = 0
    error: Optional[str] = None


class SessionInfo(BaseModel):
    session_id: str
    kind: Literal['image', 'video', 'stream']
    width: Optional[int]
    height: Optional[int]
    num_frames: Optional[int]
    objects: List[int]
    prompted_frames: List[int]
    propagation: Progress
    expires_in_s: float


__all__ = ['RLE', 'PromptRequest', 'PropagateRequest', 'PathRequest', 'ObjectMask', 'FrameMasks',
           'Progress', 'SessionInfo', 'MAX_OBJ_ID']
