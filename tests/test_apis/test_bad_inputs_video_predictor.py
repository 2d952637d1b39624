"""Bad inputs to the video entry points (FastSAM2VideoPredictor incl. streaming, open_video):
a clear error naming the argument / file / frame, never a crash or a silent NaN."""
import cv2
import numpy as np
import pytest

from seg.apis import FastSAM2VideoPredictor, open_video
from tests.conftest import REPO_ROOT

CFG = str(REPO_ROOT / 'configs/fastsam2/model_fastsam2_tiny.py')
H, W = 48, 64


def _frames(n, h=H, w=W):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope='module')
def predictor():
    with pytest.warns(UserWarning, match='RANDOM weights'):
        return FastSAM2VideoPredictor.from_config(CFG, image_size=64, max_input_pixels=10_000)


@pytest.fixture(scope='module')
def state(predictor):
    return predictor.init_state(_frames(3))


BAD_PROMPTS = [
    (dict(points=[[np.nan, 1]], labels=[1]), ValueError, 'points has non-finite'),
    (dict(points=[[1, np.inf]], labels=[1]), ValueError, 'points has non-finite'),
    (dict(points=[[1, 2, 3]], labels=[1]), ValueError, r'\[N, 2\]'),
    (dict(points=[[1, 2]], labels=[-1]), ValueError, r'1 \(positive\) or 0 \(negative\)'),
    (dict(points=[[1, 2]], labels=[0.3]), ValueError, 'integers'),
    (dict(points=[[1, 2]]), ValueError, 'without labels'),
    (dict(points=[[1000, 2]], labels=[1]), ValueError, 'outside the image'),
    (dict(box=[0, 0, np.nan, 3]), ValueError, 'box has non-finite'),
    (dict(box=[[0, 0, 3, 3], [0, 0, 4, 4]]), ValueError, 'one x1, y1, x2, y2'),
    (dict(), ValueError, 'give points'),
    (dict(obj_id=1.0, points=[[1, 2]], labels=[1]), TypeError, 'obj_id must be an int'),
    (dict(obj_id=True, points=[[1, 2]], labels=[1]), TypeError, 'obj_id must be an int'),
    (dict(frame_idx=3, points=[[1, 2]], labels=[1]), IndexError, 'out of range'),
    (dict(frame_idx=-1, points=[[1, 2]], labels=[1]), IndexError, 'out of range'),
    (dict(frame_idx='0', points=[[1, 2]], labels=[1]), TypeError, 'frame_idx must be an int'),
]


@pytest.mark.parametrize('kwargs,error,match', BAD_PROMPTS)
def test_add_points_or_box_rejects(predictor, state, kwargs, error, match):
    kwargs = dict(dict(frame_idx=0, obj_id=1), **kwargs)
    with pytest.raises(error, match=match):
        predictor.add_new_points_or_box(state, **kwargs)
    assert state.obj_ids == [] and state.prompts == {}  # nothing half-stored


@pytest.mark.parametrize('mask,match', [
    (np.ones((5, 5)), r'must be \[48, 64\]'), (np.full((H, W), np.nan), 'NaN'),
    (np.zeros((H, W)), 'empty'), (np.full((H, W), 'x'), 'numeric or bool')])
def test_add_new_mask_rejects(predictor, state, mask, match):
    with pytest.raises(ValueError, match=match):
        predictor.add_new_mask(state, 0, 1, mask)


def test_stream_rejects_a_frame_size_change_and_goes_on(predictor):
    """Documented choice: a stream keeps its first frame size; another size is rejected with a
    clear error and the stream still tracks frames of its size afterwards."""
    stream = predictor.start_stream()
    predictor.track(stream, _frames(1)[0])
    predictor.add_new_points_or_box(stream, 0, 1, points=[[20, 20]], labels=[1])
    with pytest.raises(ValueError, match='stream frame 1 is 32x24 .* a stream keeps one frame size'):
        predictor.track(stream, _frames(1, 24, 32)[0])
    obj_ids, masks = predictor.track(stream, _frames(2)[1])
    assert obj_ids == [1] and masks.shape == (1, 1, H, W) and masks.isfinite().all()


@pytest.mark.parametrize('frame,error,match', [
    (np.full((H, W, 3), np.nan, np.float32), ValueError, 'NaN / inf'),
    (np.zeros((H, W), np.uint8), ValueError, 'grey image'),
    (np.zeros((200, 200, 3), np.uint8), ValueError, 'above the cap'),
    ('frame.jpg', TypeError, 'must be an RGB uint8 array'),
])
def test_track_rejects_bad_frames(predictor, frame, error, match):
    with pytest.raises(error, match=match):
        predictor.track(predictor.start_stream(), frame)


@pytest.fixture(scope='module')
def video_files(tmp_path_factory):
    d = tmp_path_factory.mktemp('videos')
    writer = cv2.VideoWriter(str(d / 'ok.mp4'), cv2.VideoWriter_fourcc(*'mp4v'), 10, (W, H))
    for f in _frames(5):
        writer.write(f)
    writer.release()
    data = (d / 'ok.mp4').read_bytes()
    (d / 'truncated.mp4').write_bytes(data[:len(data) // 3])
    (d / 'empty.mp4').write_bytes(b'')
    (d / 'garbage.mp4').write_bytes(b'\x00' * 500)
    (d / 'notes.txt').write_text('hello')
    folder = d / 'frames'
    folder.mkdir()
    for i, f in enumerate(_frames(3)):
        cv2.imwrite(str(folder / f'{i:05d}.jpg'), f)
    jpg = (folder / '00001.jpg').read_bytes()
    (folder / '00001.jpg').write_bytes(jpg[:len(jpg) // 2])  # truncated middle frame
    (d / 'empty_folder').mkdir()
    return d


@pytest.mark.parametrize('name,error,match', [
    ('missing.mp4', FileNotFoundError, 'not found'), ('empty.mp4', ValueError, 'empty'),
    ('garbage.mp4', ValueError, 'cannot open video'), ('notes.txt', ValueError, 'unsupported video'),
    ('empty_folder', ValueError, 'holds no'),
])
def test_open_video_rejects(video_files, name, error, match):
    with pytest.raises(error, match=match):
        open_video(video_files / name)


def test_truncated_video_and_frame_fail_on_the_frame(predictor, video_files):
    folder = open_video(video_files / 'frames')
    folder.read_frame(0)
    with pytest.raises(ValueError, match=r'frame 1 .*00001\.jpg is corrupt or truncated'):
        folder.read_frame(1)
    try:
        video = open_video(video_files / 'truncated.mp4')
    except ValueError as e:  # the container index is gone: rejected at open
        assert 'truncated.mp4' in str(e)
        return
    with pytest.raises(ValueError, match='truncated.mp4.*cannot decode frame'):
        for i in range(video.num_frames):
            video.read_frame(i)
