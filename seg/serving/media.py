"""Checks and decoding of what clients upload: the kind from the magic bytes (never from the name
or the declared type alone), size / frame / resolution caps, safe unpacking of frame zips.

Every rejection is an ``ApiError`` with the HTTP status the server answers (413 too large,
415 wrong type, 422 unreadable / over a cap) and a message naming the file and the limit.
"""
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from seg.apis.video_io import IMAGE_EXTENSIONS

from .errors import ApiError

# declared content types accepted for each detected kind (octet-stream: the magic bytes decide)
CONTENT_TYPES: Dict[str, Tuple[str, ...]] = {
    'jpeg': ('image/jpeg', 'image/jpg'),
    'png': ('image/png',),
    'zip': ('application/zip', 'application/x-zip-compressed', 'application/x-zip'),
    'mp4': ('video/mp4', 'video/quicktime'),
    'webm': ('video/webm', 'video/x-matroska'),
}
ANY_TYPE = ('application/octet-stream', '')


@dataclass
class Limits:
    """Upload caps: bytes of one upload, bytes unpacked from a zip, frames, longer side (px)."""
    max_upload_bytes: int = 64 << 20
    max_unpacked_bytes: int = 256 << 20
    max_frames: int = 500
    max_side: int = 2048


def sniff(data: bytes) -> Optional[str]:
    """The file kind from its first bytes: jpeg / png / zip / mp4 / webm, or None."""
    if data[:3] == b'\xff\xd8\xff':
        return 'jpeg'
    if data[:8] == b'\x89PNG\r\n\x1a\n':
        return 'png'
    if data[:4] == b'PK\x03\x04':
        return 'zip'
    if data[4:8] == b'ftyp':
        return 'mp4'
    if data[:4] == b'\x1a\x45\xdf\xa3':
        return 'webm'
    return None


def check_kind(data: bytes, name: str, content_type: Optional[str]) -> str:
    """The upload's kind; 415 when the bytes are none we take or disagree with the declared type."""
    kind = sniff(data)
    if kind is None:
        raise ApiError(415, f'{name}: not a JPEG, PNG, ZIP of frames, MP4 or WebM (first bytes '
                              f'{data[:8].hex()})')
    declared = (content_type or '').split(';')[0].strip().lower()
    if declared not in ANY_TYPE and declared not in CONTENT_TYPES[kind]:
        raise ApiError(415, f'{name}: declared content type {declared!r} but the bytes are {kind}')
    return kind


def check_size(hw: Tuple[int, int], where: str, limits: Limits) -> None:
    h, w = hw
    if h < 1 or w < 1:
        raise ApiError(422, f'{where}: empty image {w}x{h}')
    if max(h, w) > limits.max_side:
        raise ApiError(422, f'{where}: {w}x{h} exceeds the resolution cap (longer side '
                              f'{limits.max_side} px)')


def image_header_size(data: bytes, where: str) -> Tuple[int, int]:
    """``(h, w)`` from an image's header, without decoding its pixels (decompression bombs)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Exception as e:  # noqa: BLE001  (PIL raises many kinds)
        raise ApiError(422, f'{where}: unreadable image ({e})') from None
    return h, w


def decode_image(data: bytes, where: str, limits: Limits) -> np.ndarray:
    """An uploaded JPEG / PNG -> RGB ``uint8 [H, W, 3]`` within the resolution cap."""
    check_size(image_header_size(data, where), where, limits)
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert('RGB'))
    except Exception as e:  # noqa: BLE001
        raise ApiError(422, f'{where}: unreadable image ({e})') from None


def unpack_frames(data: bytes, name: str, dest: Path, limits: Limits) -> List[Path]:
    """The JPEG / PNG frames of a zip into ``dest`` (flat, by their base names, checked by magic
    bytes and header size); other members (folders, notes) are skipped. Member paths are never
    joined to ``dest`` as given, so a ``../`` entry cannot write outside it."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise ApiError(422, f'{name}: not a readable zip ({e})') from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()
                   and Path(m.filename).suffix.lower() in IMAGE_EXTENSIONS
                   and not Path(m.filename).name.startswith('.')]
        if not members:
            raise ApiError(422, f'{name}: the zip holds no {"/".join(IMAGE_EXTENSIONS)} frames')
        if len(members) > limits.max_frames:
            raise ApiError(422, f'{name}: {len(members)} frames exceed the cap of '
                                  f'{limits.max_frames}')
        total = sum(m.file_size for m in members)
        if total > limits.max_unpacked_bytes:
            raise ApiError(413, f'{name}: the frames unpack to {total} bytes, over the cap of '
                                  f'{limits.max_unpacked_bytes}')
        names = [Path(m.filename.replace('\\', '/')).name for m in members]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ApiError(422, f'{name}: frame names occur twice (in different folders): {dupes[:5]}')
        dest.mkdir(parents=True, exist_ok=True)
        size = None
        paths = []
        for member, base in sorted(zip(members, names), key=lambda x: x[1]):
            blob = archive.read(member)
            where = f'{name}:{member.filename}'
            if sniff(blob) not in ('jpeg', 'png'):
                raise ApiError(415, f'{where}: not a JPEG / PNG (first bytes {blob[:8].hex()})')
            hw = image_header_size(blob, where)
            check_size(hw, where, limits)
            if size is not None and hw != size:
                raise ApiError(422, f'{where}: {hw[1]}x{hw[0]} but the first frame is '
                                      f'{size[1]}x{size[0]}; all frames must have one size')
            size = hw
            path = dest / base
            path.write_bytes(blob)
            paths.append(path)
    return paths


def video_suffix(kind: str) -> str:
    """The file suffix OpenCV needs to open a video of ``kind``."""
    return {'mp4': '.mp4', 'webm': '.webm'}[kind]


__all__ = ['Limits', 'sniff', 'check_kind', 'check_size', 'decode_image',
           'unpack_frames', 'video_suffix']
