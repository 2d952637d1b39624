"""Input validation shared by every public entry point (predictors, demo, evaluation CLIs, dataset
loaders and converters): one place decides what is accepted, clipped or rejected, and every error
names the argument / file / key, the value given and what was expected.

Policy:

- Images are ``uint8 [H, W, 3]`` arrays (or PIL images, converted to RGB). Other dtypes (float
  images, possibly holding NaN), other channel counts, 2-D arrays and empty images are rejected
  with a ``ValueError`` (a ``TypeError`` for a non-array). An image with more than
  ``max_pixels`` pixels (default ``DEFAULT_MAX_INPUT_PIXELS`` = 100 M, e.g. 12000 x 8333; every
  entry point takes a ``max_input_pixels`` / ``--max-input-pixels`` to change it) is rejected
  before it is decoded or processed.
- Image / video / JSON files: missing -> ``FileNotFoundError``; a folder, an empty file, a file no
  decoder can read, a truncated image -> ``ValueError`` naming the path.
- Point prompts: NaN / inf, a wrong arity (not ``[..., 2]``), labels that are not integers of the
  allowed set (``1`` positive, ``0`` negative, ``-1`` padding where allowed; a float ``0.5`` or a
  bool is rejected) -> ``ValueError``. A point may lie on the image border (``0 <= x <= W``).
  A point less than ``CLIP_TOLERANCE`` (2 % of the image side, at least 2 px) outside the image
  is CLIPPED to the border (a click on the edge of a displayed image, a rounding of the
  coordinate transform); farther outside it is REJECTED, since such a point almost always means
  a wrong coordinate frame (normalised vs pixels, x / y swapped, another image's size).
- Boxes: ``x1, y1, x2, y2`` with the same finite / clip / reject rule per corner, and ``x2 >= x1``,
  ``y2 >= y1`` (a zero-width box is accepted).
- Masks: 2-D (or stacked ``[N, H, W]``) numeric or bool arrays of the image's size, finite.
- Integer ids (object ids, frame indices, JSON ids): Python / numpy integers (not bool, not
  float), inside the documented range.
- JSON records (annotation files): a missing key, a value of the wrong JSON type, an id that is
  not an integer or refers to nothing (an unknown image / category), a box with a non-finite or
  negative side -> ``ValueError`` naming the file, the record and the key.
- Command-line tools raise these errors from ``main()`` (callable in-process) and turn them into
  one ``<tool>: error: <message>`` line and exit status 1 when run as a script
  (``cli_input_errors``), never a traceback.
- JSON files are parsed strictly: ``NaN`` / ``Infinity`` tokens are rejected. JSON written by this
  project uses ``allow_nan=False`` (``seg.utils.atomic_io.atomic_write_json``), so a non-finite
  number that slipped through is an error, never a bare ``NaN`` token.
"""
import json
import numbers
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

PathLike = Union[str, os.PathLike]
# the largest image every entry point accepts by default (pixels), see the module docstring
DEFAULT_MAX_INPUT_PIXELS = 100_000_000
# how far outside the image a point / box corner may lie and still be clipped (fraction of the side)
CLIP_TOLERANCE = 0.02
CLIP_TOLERANCE_MIN_PX = 2.0
POINT_LABELS = (1, 0, -1)


def check_pixels(height: int, width: int, name: str,
                 max_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS) -> None:
    """Reject an empty image or one above ``max_pixels`` (None: no cap)."""
    if height <= 0 or width <= 0:
        raise ValueError(f'{name}: empty image ({width}x{height} pixels)')
    if max_pixels is not None and height * width > max_pixels:
        raise ValueError(f'{name}: {width}x{height} = {height * width} pixels is above the cap of '
                         f'{max_pixels} input pixels; downscale it or raise the cap '
                         '(max_input_pixels= / --max-input-pixels)')


def check_image(image: Any, name: str = 'image',
                max_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS,
                order: str = 'RGB') -> np.ndarray:
    """An image as a contiguous ``uint8 [H, W, 3]`` array (``order`` names its channel order in
    messages; a PIL image is converted to RGB), or an error naming ``name`` (see the module
    docstring)."""
    if isinstance(image, Image.Image):
        check_pixels(image.height, image.width, name, max_pixels)
        return np.asarray(image.convert('RGB'))
    if isinstance(image, torch.Tensor):
        raise TypeError(f'{name} must be a numpy {order} uint8 array [H, W, 3] (or a PIL image), '
                        f'got a torch.Tensor {tuple(image.shape)}; use tensor.cpu().numpy()')
    if not isinstance(image, np.ndarray):
        raise TypeError(f'{name} must be an {order} uint8 array [H, W, 3] or a PIL image, got '
                        f'{type(image).__name__}')
    if image.dtype != np.uint8:
        extra = ''
        if np.issubdtype(image.dtype, np.floating) and image.size and not np.isfinite(image).all():
            extra = ' (and it holds NaN / inf values)'
        raise ValueError(f'{name} must be uint8 (0..255), got dtype {image.dtype}{extra}')
    if image.ndim != 3 or image.shape[2] != 3:
        hint = ' (a grey image: stack it to 3 channels)' if image.ndim == 2 else ''
        raise ValueError(f'{name} must be {order} [H, W, 3], got shape {image.shape}{hint}')
    check_pixels(image.shape[0], image.shape[1], name, max_pixels)
    return np.ascontiguousarray(image)


def _existing_path(path: Any, name: str) -> Path:
    """``path`` as a ``Path`` that exists (file or folder)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f'{name} must be a path, got {type(path).__name__}')
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f'{name} not found: {p}')
    return p


def check_file(path: Any, name: str = 'file') -> Path:
    """``path`` as a ``Path`` to an existing, non-empty regular file."""
    p = _existing_path(path, name)
    if p.is_dir():
        raise ValueError(f'{name} {p} is a folder, expected a file')
    if p.stat().st_size == 0:
        raise ValueError(f'{name} {p} is empty (0 bytes)')
    return p


def check_dir(path: Any, name: str = 'folder') -> Path:
    """``path`` as a ``Path`` to an existing folder."""
    p = _existing_path(path, name)
    if not p.is_dir():
        raise ValueError(f'{name} {p} is not a folder')
    return p


def check_out_path(path: Any, name: str = 'output', folder: bool = False) -> Path:
    """An output path that can be written: not an existing folder (a file output) or file (a
    ``folder`` output), under no existing file. Checked before the work, not after it."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f'{name} must be a path, got {type(path).__name__}')
    p = Path(path)
    if p.exists() and p.is_dir() != folder:
        raise ValueError(f'{name} {p} is an existing {"file" if folder else "folder"}, expected '
                         f'a {"folder" if folder else "file"} path')
    blocking = next((q for q in p.parents if q.exists() and not q.is_dir()), None)
    if blocking is not None:
        raise ValueError(f'{name} {p} cannot be created: {blocking} is a file, not a folder')
    return p


def read_image_file(path: PathLike, name: str = 'image',
                    max_pixels: Optional[int] = DEFAULT_MAX_INPUT_PIXELS,
                    mode: str = 'RGB', exif_orientation: bool = False) -> np.ndarray:
    """Decode an image file fully (a truncated file is an error, not a grey bottom) as ``mode``
    (``'RGB'`` -> ``uint8 [H, W, 3]``; ``'BGR'``; ``'L'`` / ``'P'`` / ``None`` (as stored) ->
    ``[H, W]`` for single-channel files). The pixel cap is checked on the header, before the
    pixels are decoded. ``exif_orientation``: rotate / flip by the EXIF orientation tag, as
    OpenCV and mmcv's ``imread`` (hence ``LoadImageFromFile``) do, for pixels that line up with
    what the training pipeline loads."""
    p = check_file(path, name)
    try:
        with Image.open(p) as im:
            check_pixels(im.height, im.width, f'{name} {p}', max_pixels)
            im.load()  # decodes everything: raises on truncated / corrupt data
            if exif_orientation:
                im = ImageOps.exif_transpose(im)
            if mode in ('RGB', 'BGR'):
                out = np.asarray(im.convert('RGB'))
                return np.ascontiguousarray(out[..., ::-1]) if mode == 'BGR' else out
            if mode is not None and im.mode != mode:
                im = im.convert(mode)
            return np.asarray(im)
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ValueError(f'{name} {p} cannot be read as an image: {e}') from None
    except (OSError, SyntaxError) as e:  # PIL: truncated / broken streams
        raise ValueError(f'{name} {p} is corrupt or truncated: {e}') from None


def _numeric(value: Any, name: str) -> np.ndarray:
    """A numeric (not bool) numpy array of ``value`` (lists, arrays, tensors)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        a = np.asarray(value)
    except ValueError:  # ragged nested lists
        raise ValueError(f'{name} must be a rectangular array of numbers, got {value!r:.200}') from None
    if a.dtype == bool or a.dtype == object or not np.issubdtype(a.dtype, np.number):
        raise ValueError(f'{name} must hold numbers, got dtype {a.dtype}: {value!r:.200}')
    return a


def check_finite(value: Any, name: str) -> np.ndarray:
    """``value`` as a finite float32 array, or a ValueError naming the first bad entry."""
    a = _numeric(value, name).astype(np.float32)
    if not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0].tolist()
        raise ValueError(f'{name} has non-finite values (first at index {bad}: '
                         f'{a[tuple(bad)]}); NaN / inf prompts are rejected')
    return a


def check_tensor_finite(t: torch.Tensor, name: str) -> None:
    """Raise a ValueError naming ``name`` when ``t`` holds NaN / inf (one reduction)."""
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f'{name} holds NaN / inf values ({tuple(t.shape)}); the input image or the '
                         'model weights are not finite')


def _clip_or_reject(xy: np.ndarray, name: str, hw: Tuple[int, int], normalized: bool,
                    rows: Optional[np.ndarray] = None) -> np.ndarray:
    """Clip ``[..., 2]`` (x, y) within the tolerance outside the image, reject beyond it."""
    h, w = hw
    size = np.array([1.0, 1.0] if normalized else [w, h], dtype=np.float32)
    tol = np.maximum(CLIP_TOLERANCE * size,
                     CLIP_TOLERANCE_MIN_PX * size / np.array([w, h], dtype=np.float32))
    outside = ((xy < -tol) | (xy > size + tol)).any(-1)
    if rows is not None:
        outside &= rows
    if outside.any():
        unit = 'normalised 0..1' if normalized else f'pixels of the {w}x{h} (WxH) image'
        raise ValueError(f'{name} {xy[outside][0].tolist()} lies outside the image (coordinates '
                         f'are {unit}; up to {CLIP_TOLERANCE:.0%} of the side outside is clipped)')
    return np.clip(xy, 0, size)


def check_points(coords: Any, labels: Any, hw: Tuple[int, int], name: str = 'point_coords',
                 normalized: bool = False, allowed_labels: Sequence[int] = POINT_LABELS,
                 labels_name: str = 'point_labels') -> Tuple[np.ndarray, np.ndarray]:
    """Clicks ``[N, 2]`` / ``[B, N, 2]`` (x, y) and labels ``[N]`` / ``[B, N]`` of an image of
    size ``hw`` -> ``(float32 [B, N, 2] clipped, int64 [B, N])`` (see the module docstring).
    Padding points (label -1) are not range-checked."""
    if labels is None:
        raise ValueError(f'{name} given without {labels_name} (1 positive, 0 negative per point)')
    pts = check_finite(coords, name)
    if pts.ndim == 2:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[-1] != 2:
        raise ValueError(f'{name} must be [N, 2] or [B, N, 2] (x, y), got shape '
                         f'{tuple(np.shape(coords))}')
    if pts.shape[1] == 0:
        raise ValueError(f'{name} has no point; pass None instead of an empty list')
    labs = check_labels(labels, labels_name, allowed_labels)
    labs = labs[None] if labs.ndim == 1 else labs
    if labs.shape != pts.shape[:2]:
        raise ValueError(f'{labels_name} must have one label per point {tuple(pts.shape[:2])}, '
                         f'got shape {tuple(np.shape(labels))}')
    return _clip_or_reject(pts, name, hw, normalized, labs >= 0), labs


def check_labels(labels: Any, name: str, allowed: Sequence[int] = POINT_LABELS) -> np.ndarray:
    """Integer labels of the ``allowed`` set as int64 (float values must be whole numbers)."""
    a = _numeric(labels, name)
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or (a != np.round(a)).any():
            raise ValueError(f'{name} must be integers {list(allowed)}, got {a.tolist()!r:.200}')
    a = a.astype(np.int64)
    bad = sorted(set(a.ravel().tolist()) - set(allowed))
    if bad:
        kinds = {1: '1 (positive)', 0: '0 (negative)', -1: '-1 (padding)'}
        raise ValueError(f'{name} must be ' + ' or '.join(kinds.get(v, str(v)) for v in allowed)
                         + f', got {bad}')
    return a


def check_boxes(box: Any, hw: Tuple[int, int], name: str = 'box',
                normalized: bool = False) -> np.ndarray:
    """``[4]`` / ``[B, 4]`` xyxy boxes -> float32 ``[B, 4]``, corners clipped / rejected as points."""
    b = check_finite(box, name)
    b = b[None] if b.ndim == 1 else b
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f'{name} must be [4] or [B, 4] (x1, y1, x2, y2), got shape '
                         f'{tuple(np.shape(box))}')
    if ((b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])).any():
        raise ValueError(f'{name} must be x1, y1, x2, y2 with x2 >= x1 and y2 >= y1, got '
                         f'{b.tolist()}')
    return _clip_or_reject(b.reshape(-1, 2, 2), name, hw, normalized).reshape(-1, 4)


def check_mask(mask: Any, name: str, hw: Optional[Tuple[int, int]] = None,
               ndim: int = 2) -> np.ndarray:
    """A finite numeric / bool mask with ``ndim`` dims and spatial size ``hw`` (None: any)."""
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask)
    if not isinstance(mask, np.ndarray):
        try:
            mask = np.asarray(mask)
        except ValueError:
            raise ValueError(f'{name} must be an array, got a ragged {type(mask).__name__}') from None
    if not (mask.dtype == bool or np.issubdtype(mask.dtype, np.number)):
        raise ValueError(f'{name} must be a numeric or bool array, got dtype {mask.dtype}')
    expected = ('[H, W]' if ndim == 2 else '[N, H, W]') if hw is None else \
        (f'[{hw[0]}, {hw[1]}]' if ndim == 2 else f'[N, {hw[0]}, {hw[1]}]')
    if mask.ndim != ndim or (hw is not None and tuple(mask.shape[-2:]) != tuple(hw)):
        raise ValueError(f'{name} must be {expected} (H, W = the image size), got shape '
                         f'{tuple(mask.shape)}')
    if mask.size == 0:
        raise ValueError(f'{name} is empty (shape {tuple(mask.shape)})')
    if np.issubdtype(mask.dtype, np.floating) and not np.isfinite(mask).all():
        raise ValueError(f'{name} holds NaN / inf values')
    return mask


def check_int(value: Any, name: str, min_value: Optional[int] = None,
              max_value: Optional[int] = None) -> int:
    """``value`` as a Python int (a Python / numpy integer, not a bool or a float) in range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f'{name} must be an int, got {value!r} ({type(value).__name__})')
    v = int(value)
    if (min_value is not None and v < min_value) or (max_value is not None and v > max_value):
        lo = '' if min_value is None else f'>= {min_value}'
        hi = '' if max_value is None else f'<= {max_value}'
        raise ValueError(f'{name} must be {" and ".join(s for s in (lo, hi) if s)}, got {v}')
    return v


def _reject_constant(token: str) -> None:
    raise ValueError(f'non-finite number {token!r} (not valid JSON)')


def load_json_file(path: PathLike, name: str = 'JSON file',
                   expect: Optional[type] = None) -> Any:
    """Parse a JSON file strictly (no ``NaN`` / ``Infinity``); ``expect``: the top-level type
    (``list`` / ``dict``)."""
    p = check_file(path, name)
    try:
        data = json.loads(p.read_text(encoding='utf-8'), parse_constant=_reject_constant)
    except UnicodeDecodeError as e:
        raise ValueError(f'{name} {p} is not UTF-8 text: {e}') from None
    except ValueError as e:  # JSONDecodeError is a ValueError; so are the rejected constants
        raise ValueError(f'{name} {p} is not valid JSON: {e}') from None
    if expect is not None and not isinstance(data, expect):
        raise ValueError(f'{name} {p}: expected a JSON {expect.__name__}, got '
                         f'{type(data).__name__}')
    return data


def loads_json_line(line: str, name: str) -> Any:
    """One strict JSON document from a string (stdin lines, CLI arguments)."""
    try:
        return json.loads(line, parse_constant=_reject_constant)
    except ValueError as e:
        raise ValueError(f'{name}: not valid JSON ({e}): {line!r:.200}') from None


def require_keys(record: Any, keys: Sequence[str], name: str) -> dict:
    """``record`` as a dict holding every key of ``keys`` (a KeyError-free error naming them)."""
    if not isinstance(record, dict):
        raise ValueError(f'{name} must be a JSON object, got {type(record).__name__}')
    missing = [k for k in keys if k not in record]
    if missing:
        raise ValueError(f'{name} lacks the key(s) {missing} (has {sorted(record)[:10]})')
    return record


def require_list(record: dict, key: str, name: str, allow_empty: bool = True) -> list:
    """``record[key]`` as a JSON list (``record`` already checked by ``require_keys``)."""
    value = record[key]
    if not isinstance(value, list):
        raise ValueError(f'{name}: "{key}" must be a JSON list, got {type(value).__name__}')
    if not allow_empty and not value:
        raise ValueError(f'{name}: "{key}" is an empty list')
    return value


def check_xywh_box(box: Any, name: str) -> np.ndarray:
    """A COCO ``[x, y, w, h]`` box of finite numbers with ``w, h >= 0`` as float64 ``[4]``."""
    b = _numeric(box, name).astype(np.float64)
    if b.shape != (4, ):
        raise ValueError(f'{name} must be [x, y, w, h], got {box!r:.200}')
    if not np.isfinite(b).all() or (b[2:] < 0).any():
        raise ValueError(f'{name} must be finite with width and height >= 0, got {b.tolist()}')
    return b


@contextmanager
def cli_input_errors(prog: str) -> Iterator[None]:
    """Around a script's ``main()``: an input error (a missing / unreadable file, a bad value or
    key) exits with status 1 and one line ``<prog>: error: <message>``, as argparse reports bad
    arguments, instead of a traceback. ``main()`` itself still raises (tests call it)."""
    try:
        yield
    except (ValueError, TypeError, KeyError, OSError) as e:
        # str(KeyError) is the repr of its message; show the message itself
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        raise SystemExit(f'{prog}: error: {message}') from None


__all__ = ['DEFAULT_MAX_INPUT_PIXELS', 'CLIP_TOLERANCE', 'POINT_LABELS', 'check_pixels',
           'check_image', 'check_file', 'check_dir', 'check_out_path', 'read_image_file', 'check_finite',
           'check_tensor_finite', 'check_points', 'check_labels', 'check_boxes', 'check_mask',
           'check_int', 'load_json_file', 'loads_json_line', 'require_keys', 'require_list',
           'check_xywh_box', 'cli_input_errors']
