"""Lazy frame sources: decode only what is asked for, keep a bounded cache, clear errors."""
import cv2
import numpy as np
import pytest

from seg.apis.video_io import FrameListSource, ImageFolderSource, StreamSource, VideoFileSource, open_video

H, W = 32, 48


def _frame(i: int) -> np.ndarray:
    """RGB frame whose red channel encodes ``i`` (blocks survive lossy codecs)."""
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = (i * 37) % 256
    img[:, :W // 2, 2] = 200
    return img


def _write_video(path, n: int, fourcc: str = 'mp4v') -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (W, H))
    assert writer.isOpened()
    for i in range(n):
        writer.write(cv2.cvtColor(_frame(i), cv2.COLOR_RGB2BGR))
    writer.release()


def test_mp4_is_decoded_lazily_with_a_bounded_cache(tmp_path):
    path = tmp_path / 'clip.mp4'
    _write_video(path, 200)
    processed = []
    source = open_video(path, transform=lambda f: processed.append(1) or f.astype(np.float32),
                        cache_size=3)
    assert isinstance(source, VideoFileSource) and len(source) == 200
    assert source.decode_count == 0  # opening reads no frame
    sequential = []
    for i in range(200):
        sequential.append(source[i])
        assert len(source.cached_indices()) <= 3
        assert source.decode_count == i + 1  # each frame decoded once, when asked for
    assert len(processed) == 200 and source.cached_indices() == [197, 198, 199]
    assert source[198] is sequential[198] and source.decode_count == 200  # a cache hit
    # any other index seeks and decodes that frame only
    np.testing.assert_allclose(source[120], sequential[120], atol=8)
    np.testing.assert_allclose(source[5], sequential[5], atol=8)
    assert source.decode_count == 202
    assert abs(float(sequential[77][..., 0].mean()) - (77 * 37) % 256) < 12
    with pytest.raises(IndexError, match='frame index 200 out of range'):
        source[200]
    source.close()


@pytest.mark.parametrize('ext, fourcc', [('.avi', 'MJPG'), ('.webm', 'VP80')])
def test_other_containers(tmp_path, ext, fourcc):
    path = tmp_path / f'clip{ext}'
    _write_video(path, 12, fourcc)
    source = open_video(path)
    assert len(source) == 12 and source.read_frame(11).shape == (H, W, 3)
    assert source.frame_size == (H, W)


def test_frame_folder_in_name_order_and_its_errors(tmp_path):
    for i in (2, 0, 10, 1):  # written out of order; the name order is the frame order
        cv2.imwrite(str(tmp_path / f'{i:05d}.png'), cv2.cvtColor(_frame(i), cv2.COLOR_RGB2BGR))
    (tmp_path / 'notes.txt').write_text('not a frame')
    source = open_video(tmp_path)
    assert isinstance(source, ImageFolderSource) and len(source) == 4
    assert [p.name for p in source.files] == ['00000.png', '00001.png', '00002.png', '00010.png']
    np.testing.assert_array_equal(source[3], _frame(10))  # PNG: exact, RGB order
    with pytest.raises(FileNotFoundError, match='frame folder not found'):
        ImageFolderSource(tmp_path / 'missing')
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='holds no .jpg/.jpeg/.png frames'):
        open_video(empty)
    (tmp_path / '00011.jpg').write_bytes(b'not a jpeg')
    with pytest.raises(ValueError, match=r'frame 4 .*00011\.jpg cannot be read as an image'):
        open_video(tmp_path).read_frame(4)


def test_bad_video_files(tmp_path):
    bad = tmp_path / 'broken.mp4'
    bad.write_bytes(b'\x00' * 100)
    with pytest.raises(ValueError, match='cannot open video .*broken.mp4'):
        open_video(bad)
    with pytest.raises(FileNotFoundError, match='video not found'):
        open_video(tmp_path / 'missing.mp4')
    other = tmp_path / 'frames.gif'
    other.write_bytes(b'GIF89a')
    with pytest.raises(ValueError, match='unsupported video'):
        open_video(other)
    with pytest.raises(TypeError, match='video must be a path'):
        open_video(3.5)


def test_frame_list_checks_each_frame_and_its_size():
    frames = [_frame(0), _frame(1), np.zeros((H, W), np.uint8), np.zeros((H + 1, W, 3), np.uint8)]
    source = open_video(frames)
    assert isinstance(source, FrameListSource) and len(source) == 4
    np.testing.assert_array_equal(source[1], _frame(1))
    with pytest.raises(ValueError, match=r'frame list frame 2 must be RGB \[H, W, 3\], got shape'):
        source[2]
    with pytest.raises(ValueError, match='frame 3 is'):
        source[3]
    with pytest.raises(ValueError, match='no frames'):
        FrameListSource([])
    with pytest.raises(IndexError, match='frame index -1 out of range'):
        source[-1]


def test_stream_is_read_forwards_only():
    pulled = []

    def camera():
        for i in range(5):
            pulled.append(i)
            yield _frame(i)

    source = open_video(camera(), cache_size=2)
    assert isinstance(source, StreamSource) and source.num_frames is None and not pulled
    np.testing.assert_array_equal(source[0], _frame(0))
    assert pulled == [0]  # nothing read ahead
    source[1]
    source[2]
    assert source.cached_indices() == [1, 2]
    with pytest.raises(IndexError, match='read forwards only'):
        source[0]  # left the cache, and the stream cannot go back
    assert source.has_frame(4) and not source.has_frame(5)
    assert source.num_frames == 5 and len(source) == 5
