"""Lazy video frame sources: frames are decoded only when asked for, and only a few processed
frames are kept, so a long video never sits in memory.

Every source gives RGB ``uint8`` frames ``[H, W, 3]`` by index (``read_frame``) and, through
``__getitem__``, the frame after an optional ``transform`` (e.g. a model's normalise / resize),
kept in a small LRU cache of ``cache_size`` processed frames. ``decode_count`` counts decodes.

- ``ImageFolderSource``: a folder of JPEG / PNG frames, in file-name order (SAM2, DAVIS);
- ``VideoFileSource``: an mp4 / avi / webm / mov / mkv file read with OpenCV, sequential reads
  continue the decoder, other indices seek;
- ``FrameListSource``: a list of RGB arrays given by the caller;
- ``StreamSource``: an iterator of RGB arrays (e.g. a camera), read forwards only; its length
  is unknown until it ends.

``open_video`` picks the source for a path, list or iterator. Frames are checked by
``seg.utils.validation.check_image`` (``uint8 [H, W, 3]``, at most ``max_pixels``); a folder frame
that is corrupt or truncated, a video frame the decoder cannot read, or a frame of another size
than the first raises a ValueError naming the source and the frame.
"""
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from seg.utils.validation import DEFAULT_MAX_INPUT_PIXELS, check_file, check_image, check_int, read_image_file

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.webm', '.mov', '.mkv')
FrameTransform = Callable[[np.ndarray], Any]
VideoInput = Union[str, Path, Sequence[np.ndarray], np.ndarray, Iterator[np.ndarray], 'VideoSource']


class VideoSource:
    """Random access to the frames of a video, decoded on demand (see the module docstring).

    Subclasses implement ``_decode(idx)`` and set ``_num_frames`` (None while unknown). All
    frames must have the size of the first one decoded (``height`` / ``width``).
    """

    def __init__(self, name: str, transform: Optional[FrameTransform] = None,
                 cache_size: int = 4, max_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS) -> None:
        check_int(cache_size, f'{name}: cache_size', min_value=1)
        self.name = name
        self.max_pixels = max_pixels
        self.transform = transform
        self.cache_size = cache_size
        self.decode_count = 0
        self._num_frames: Optional[int] = None
        self._size: Optional[Tuple[int, int]] = None
        self._cache: 'OrderedDict[int, Any]' = OrderedDict()

    # -------------------------------------------------------------- queries
    @property
    def num_frames(self) -> Optional[int]:
        """The number of frames; None for a stream that has not ended yet."""
        return self._num_frames

    def __len__(self) -> int:
        if self._num_frames is None:
            raise TypeError(f'{self.name}: a stream has no length until it ends')
        return self._num_frames

    @property
    def frame_size(self) -> Tuple[int, int]:
        """``(height, width)`` of the frames (decodes the first frame if none was decoded yet)."""
        if self._size is None:
            self.read_frame(0)
        return self._size

    @property
    def random_access(self) -> bool:
        """Whether any index may be read at any time (False: forwards only)."""
        return True

    def has_frame(self, idx: int) -> bool:
        """Whether frame ``idx`` exists (a stream reads ahead to find out)."""
        return 0 <= idx < self._num_frames

    def cached_indices(self) -> List[int]:
        """Indices of the processed frames held, least recently used first."""
        return list(self._cache)

    # -------------------------------------------------------------- access
    def __getitem__(self, idx: int) -> Any:
        """Frame ``idx`` after ``transform`` (the raw RGB frame without one), LRU-cached."""
        if idx in self._cache:
            self._cache.move_to_end(idx)
            return self._cache[idx]
        frame = self.read_frame(idx)
        out = frame if self.transform is None else self.transform(frame)
        self._cache[idx] = out
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def read_frame(self, idx: int) -> np.ndarray:
        """Decode frame ``idx`` (RGB ``uint8 [H, W, 3]``), bypassing the cache."""
        idx = check_int(idx, f'{self.name}: frame index')
        if not self.has_frame(idx):
            total = 'unknown' if self._num_frames is None else self._num_frames
            raise IndexError(f'{self.name}: frame index {idx} out of range (frames: {total})')
        frame = check_image(self._decode(idx), f'{self.name} frame {idx}', self.max_pixels)
        self.decode_count += 1
        if self._size is None:
            self._size = frame.shape[:2]
        elif frame.shape[:2] != self._size:
            raise ValueError(f'{self.name}: frame {idx} is {frame.shape[:2]} but the video is '
                             f'{self._size}; all frames must have one size')
        return frame

    def clear_cache(self) -> None:
        self._cache.clear()

    def close(self) -> None:
        """Release the decoder and the cache."""
        self.clear_cache()

    def _decode(self, idx: int) -> np.ndarray:
        raise NotImplementedError


class ImageFolderSource(VideoSource):
    """JPEG / PNG frames of a folder, in file-name order (``00000.jpg``, ``00001.jpg``, ...)."""

    def __init__(self, folder: Union[str, Path], transform: Optional[FrameTransform] = None,
                 cache_size: int = 4, max_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS) -> None:
        folder = Path(folder)
        super().__init__(f'frame folder {folder}', transform, cache_size, max_pixels)
        if not folder.is_dir():
            raise FileNotFoundError(f'frame folder not found: {folder}')
        self.files = sorted(p for p in folder.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.files:
            raise ValueError(f'{self.name} holds no {"/".join(IMAGE_EXTENSIONS)} frames')
        self._num_frames = len(self.files)

    def _decode(self, idx: int) -> np.ndarray:
        # fully decoded: a truncated JPEG is an error, not a frame with a grey bottom
        return read_image_file(self.files[idx], f'{self.name}: frame {idx}', self.max_pixels)


class VideoFileSource(VideoSource):
    """A video file read with OpenCV: reading on from the last frame continues the decoder, any
    other index seeks (``CAP_PROP_POS_FRAMES``)."""

    def __init__(self, path: Union[str, Path], transform: Optional[FrameTransform] = None,
                 cache_size: int = 4, max_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS) -> None:
        path = Path(path)
        super().__init__(f'video {path}', transform, cache_size, max_pixels)
        self.path = check_file(path, 'video file')
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise ValueError(f'cannot open video {path} (not a video OpenCV can decode)')
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:  # some containers (webm) carry no frame count: count by grabbing
            count = 0
            while self._cap.grab():
                count += 1
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        if count == 0:
            self._cap.release()
            raise ValueError(f'{self.name} has no frames')
        self._num_frames = count
        self._next = 0  # index of the frame the decoder reads next
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS))

    def _decode(self, idx: int) -> np.ndarray:
        if self._cap is None:
            raise ValueError(f'{self.name} was closed')
        if idx != self._next:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise ValueError(f'{self.name}: cannot decode frame {idx}')
        self._next = idx + 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        super().close()
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class FrameListSource(VideoSource):
    """Frames the caller holds: a list of RGB ``uint8 [H, W, 3]`` arrays (or one ``[T, H, W, 3]``)."""

    def __init__(self, frames: Union[Sequence[np.ndarray], np.ndarray],
                 transform: Optional[FrameTransform] = None, cache_size: int = 4,
                 max_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS) -> None:
        super().__init__('frame list', transform, cache_size, max_pixels)
        if len(frames) == 0:
            raise ValueError('frame list: no frames')
        self.frames = frames
        self._num_frames = len(frames)

    def _decode(self, idx: int) -> np.ndarray:
        return self.frames[idx]


class StreamSource(VideoSource):
    """Frames of an iterator, pulled as they are asked for; forwards only (earlier frames are
    available while they are in the cache)."""

    def __init__(self, frames: Iterable[np.ndarray], transform: Optional[FrameTransform] = None,
                 cache_size: int = 4, max_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS) -> None:
        super().__init__('frame stream', transform, cache_size, max_pixels)
        self._iter = iter(frames)
        self._pulled = 0  # frames taken from the iterator
        self._last: Optional[np.ndarray] = None  # the last pulled frame

    @property
    def random_access(self) -> bool:
        return False

    def has_frame(self, idx: int) -> bool:
        if idx < 0:
            return False
        if self._num_frames is not None:
            return idx < self._num_frames
        while self._pulled <= idx:
            try:
                self._last = next(self._iter)
            except StopIteration:
                self._num_frames = self._pulled
                return False
            self._pulled += 1
            if self._pulled <= idx:  # skipped without being asked for
                self._last = None
        return True

    def _decode(self, idx: int) -> np.ndarray:
        if idx != self._pulled - 1 or self._last is None:
            raise IndexError(f'{self.name}: frame {idx} was already passed (the stream is at '
                             f'frame {self._pulled - 1}); a stream is read forwards only')
        return self._last


def open_video(video: VideoInput, transform: Optional[FrameTransform] = None,
               cache_size: int = 4, max_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS
               ) -> VideoSource:
    """The source for ``video``: a frame folder or video file path, a list / array of RGB frames,
    an iterator of frames, or a ``VideoSource`` (returned as is)."""
    if isinstance(video, VideoSource):
        return video
    if isinstance(video, (str, Path)):
        path = Path(video)
        if path.is_dir():
            return ImageFolderSource(path, transform, cache_size, max_pixels)
        if not path.exists():
            raise FileNotFoundError(f'video not found: {path}')
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            return VideoFileSource(path, transform, cache_size, max_pixels)
        raise ValueError(f'unsupported video {path}: give a folder of {"/".join(IMAGE_EXTENSIONS)} '
                         f'frames or a {"/".join(VIDEO_EXTENSIONS)} file')
    if isinstance(video, (list, tuple, np.ndarray)):
        return FrameListSource(video, transform, cache_size, max_pixels)
    if hasattr(video, '__next__'):
        return StreamSource(video, transform, cache_size, max_pixels)
    raise TypeError(f'video must be a path, a list of RGB frames, an iterator of frames or a '
                    f'VideoSource, got {type(video).__name__}')


__all__ = ['VideoSource', 'ImageFolderSource', 'VideoFileSource', 'FrameListSource', 'StreamSource',
           'open_video', 'IMAGE_EXTENSIONS', 'VIDEO_EXTENSIONS']
