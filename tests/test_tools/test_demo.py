"""demo/demo.py: every task on the shared samples with the tiny FastSAM2 (random init, 128 px, CPU),
the files it writes, and clear errors for bad inputs."""
import io
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image

from seg.evaluation.panoptic_quality import read_panoptic_png
from tests.conftest import REPO_ROOT, load_script

TINY = str(REPO_ROOT / 'configs/fastsam2/model_fastsam2_tiny.py')
COMMON = ['--config', TINY, '--image-size', '128', '--device', 'cpu']
H, W = 480, 854  # DAVIS 480p


@pytest.fixture(scope='module')
def demo():
    return load_script('demo/demo.py')


@pytest.fixture(scope='module')
def coco_image(shared_data):
    return sorted((shared_data / 'coco_panoptic_sample/input_images').glob('*.jpg'))[0]


@pytest.fixture(scope='module')
def bear(shared_data):
    return (sorted((shared_data / 'davis2017_sample/JPEGImages/480p/bear').glob('*.jpg')),
            shared_data / 'davis2017_sample/Annotations/480p/bear/00000.png')


@pytest.fixture(scope='module')
def bear_dir(bear, tmp_path_factory):
    """4 frames (the sample's 2 JPEGs, cycled) in a fresh folder."""
    folder = tmp_path_factory.mktemp('bear')
    jpgs = bear[0]
    for t in range(4):
        shutil.copy(jpgs[t % len(jpgs)], folder / f'{t:05d}.jpg')
    return folder


@pytest.fixture(scope='module')
def bear_mp4(bear, tmp_path_factory):
    """A 5-frame mp4 of the bear frames, written with OpenCV."""
    path = tmp_path_factory.mktemp('mp4') / 'bear.mp4'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 10, (W, H))
    jpgs = bear[0]
    for t in range(5):
        writer.write(cv2.imread(str(jpgs[t % len(jpgs)])))
    writer.release()
    return path


def _check_video_outputs(out_stem, num_frames, obj_ids):
    """MP4 frame count, one DAVIS palette PNG per frame, json frames x objects, consistent."""
    cap = cv2.VideoCapture(str(out_stem.with_suffix('.mp4')))
    count = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (H, W, 3)
        count += 1
    assert count == num_frames
    summary = json.loads(out_stem.with_suffix('.json').read_text())
    assert summary['num_frames'] == num_frames and summary['obj_ids'] == obj_ids
    assert [f['frame'] for f in summary['frames']] == list(range(num_frames))
    pngs = sorted(out_stem.glob('*.png'))
    assert [p.name for p in pngs] == [f'{t:05d}.png' for t in range(num_frames)]
    for png, frame in zip(pngs, summary['frames']):
        with Image.open(png) as im:
            assert im.mode == 'P' and im.size == (W, H)
            ids = np.array(im)
        assert [o['obj_id'] for o in frame['objects']] == obj_ids
        for o in frame['objects']:
            m = mask_utils.decode(o['segmentation'])
            assert m.shape == (H, W) and int(m.sum()) == o['area']
            assert not (ids == o['obj_id']).any() or o['area'] > 0  # a PNG id has a mask
        assert set(np.unique(ids).tolist()) <= {0, *obj_ids}
    return summary


def test_interactive_image(demo, coco_image, tmp_path, capsys):
    summary = demo.main([str(coco_image), *COMMON, '--task', 'interactive_image', '--out-dir',
                         str(tmp_path), '--points', '100,100,1 200,200,0; 300,300,1',
                         '--boxes', '-; 250,150,400,300', '--texts', 'person; -'])
    h, w = cv2.imread(str(coco_image)).shape[:2]
    stem = tmp_path / f'{coco_image.stem}_interactive_image'
    with Image.open(stem.with_suffix('.png')) as im:
        assert im.size == (w, h)
    data = json.loads(stem.with_suffix('.json').read_text())
    assert data == json.loads(json.dumps(summary))
    assert [o['obj_id'] for o in data['objects']] == [1, 2]
    assert data['objects'][0]['prompt'] == dict(points=[[100.0, 100.0], [200.0, 200.0]],
                                                labels=[1, 0], box=None, text='person')
    assert data['objects'][1]['prompt']['box'] == [250.0, 150.0, 400.0, 300.0]
    for o in data['objects']:
        assert mask_utils.decode(o['segmentation']).shape == (h, w)
        assert int(mask_utils.area(o['segmentation'])) == o['area']
    out = capsys.readouterr()
    assert 'RANDOM weights' in out.err and 'p50' in out.out and 'p90' in out.out


def test_panoptic(demo, coco_image, tmp_path):
    # random weights score low: threshold 0 so that segments exist and segments_info is exercised
    demo.main([str(coco_image), *COMMON, '--task', 'panoptic', '--score-thr', '0',
               '--out-dir', str(tmp_path)])
    h, w = cv2.imread(str(coco_image)).shape[:2]
    stem = tmp_path / f'{coco_image.stem}_panoptic'
    ids = read_panoptic_png(stem.with_suffix('.png'))
    data = json.loads(stem.with_suffix('.json').read_text())
    assert ids.shape == (h, w) and data['file_name'] == stem.with_suffix('.png').name
    segments = data['segments_info']
    assert segments and set(np.unique(ids).tolist()) - {0} == {s['id'] for s in segments}
    for s in segments:
        assert int((ids == s['id']).sum()) == s['area']
        assert isinstance(s['category_name'], str) and s['category_name']
        assert s['isthing'] == int(s['category_id'] < 80)
    with Image.open(stem.with_name(stem.name + '_overlay.png')) as im:
        assert im.size == (w, h)


def test_vos_on_a_frame_folder(demo, bear_dir, bear, tmp_path, capsys):
    demo.main([str(bear_dir), *COMMON, '--task', 'vos', '--first-mask', str(bear[1]),
               '--out-dir', str(tmp_path)])
    summary = _check_video_outputs(tmp_path / f'{bear_dir.name}_vos', 4, [1])
    assert summary['latency']['n'] == 4
    out = capsys.readouterr().out
    assert '4/4' in out and 'latency per frame (4 frames)' in out


def test_vos_on_an_mp4_with_a_binary_mask(demo, bear_mp4, bear, tmp_path):
    binary = tmp_path / 'first.png'
    Image.fromarray(((np.array(Image.open(bear[1])) == 1) * 255).astype(np.uint8)).save(binary)
    demo.main([str(bear_mp4), *COMMON, '--task', 'vos', '--first-mask', str(binary),
               '--out-dir', str(tmp_path)])
    _check_video_outputs(tmp_path / 'bear_vos', 5, [1])


def test_vos_in_bf16(demo, bear_dir, bear, tmp_path, capsys):
    """--precision reaches the predictor (bf16 autocast runs on CPU); the outputs are as in fp32."""
    demo.main([str(bear_dir), *COMMON, '--task', 'vos', '--first-mask', str(bear[1]),
               '--precision', 'bf16', '--out-dir', str(tmp_path)])
    _check_video_outputs(tmp_path / f'{bear_dir.name}_vos', 4, [1])
    with pytest.raises(SystemExit):
        demo.main([str(bear_dir), *COMMON, '--task', 'vos', '--first-mask', str(bear[1]),
                   '--precision', 'fp64'])
    assert "--precision: invalid choice: 'fp64'" in capsys.readouterr().err


def test_interactive_video_prompts_file_and_stdin(demo, bear_dir, bear, tmp_path, monkeypatch):
    shutil.copy(bear[1], tmp_path / 'obj3.png')  # binary (one id): the whole object is obj 3
    prompts = [{'frame': 0, 'obj_id': 1, 'points': [[400, 250], [100, 50]], 'labels': [1, 0]},
               {'frame': 2, 'obj_id': 2, 'box': [300, 150, 600, 400], 'text': 'bear'},
               {'frame': 1, 'obj_id': 3, 'mask': 'obj3.png'}]
    (tmp_path / 'prompts.json').write_text(json.dumps(prompts))
    stdin = '# a correction on frame 3\n\n{"frame": 3, "obj_id": 1, "points": [[120, 60]], "labels": [0]}\n'
    monkeypatch.setattr(sys, 'stdin', io.StringIO(stdin))
    demo.main([str(bear_dir), *COMMON, '--task', 'interactive_video', '--out-dir', str(tmp_path),
               '--prompts-file', str(tmp_path / 'prompts.json'), '--frame-prompts-stdin'])
    summary = _check_video_outputs(tmp_path / f'{bear_dir.name}_interactive_video', 4, [1, 2, 3])
    area = {(f['frame'], o['obj_id']): o['area'] for f in summary['frames'] for o in f['objects']}
    # objects join on their prompt frame: before it they have no mask
    assert area[(0, 2)] == area[(1, 2)] == area[(0, 3)] == 0
    assert [(p['frame'], p['obj_id'], p['source']) for p in summary['prompts']] == [
        (0, 1, 'prompts.json entry 0'), (2, 2, 'prompts.json entry 1'),
        (1, 3, 'prompts.json entry 2'), (3, 1, 'stdin line 3')]


class _Terminal(io.StringIO):
    """Typed lines: a stdin that says it is a terminal (read live, between frames)."""

    def isatty(self):
        return True


def test_interactive_video_live_terminal_prompts(demo, bear_dir, tmp_path, monkeypatch, capsys):
    lines = ['{"frame": 0, "obj_id": 1, "points": [[400, 250]]}', '{"frame": 1, "obj_id": oops}',
             '{"frame": 2, "obj_id": 2, "box": [300, 150, 600, 400]}']
    monkeypatch.setattr(sys, 'stdin', _Terminal('\n'.join(lines) + '\n'))
    demo.main([str(bear_dir), *COMMON, '--task', 'interactive_video', '--frame-prompts-stdin',
               '--out-dir', str(tmp_path)])
    # no prompt before propagation: it waited for the first typed line
    summary = _check_video_outputs(tmp_path / f'{bear_dir.name}_interactive_video', 4, [1, 2])
    assert [p['source'] for p in summary['prompts']] == ['stdin line 1', 'stdin line 3']
    assert summary['frames'][1]['objects'][1]['area'] == 0  # obj 2 joins on frame 2
    err = capsys.readouterr().err
    assert 'waiting for a first prompt line' in err and 'skipped: stdin line 2: not valid JSON' in err


def test_interactive_video_mp4_with_cli_points(demo, bear_mp4, tmp_path):
    demo.main([str(bear_mp4), *COMMON, '--task', 'interactive_video', '--out-dir', str(tmp_path),
               '--points', '400,250,1; 100,100,1 120,120,0'])
    _check_video_outputs(tmp_path / 'bear_interactive_video', 5, [1, 2])


def test_cli_script_reads_piped_prompt_lines(bear_dir, tmp_path):
    """The script itself, prompts only from a pipe, as a live tool would feed it."""
    lines = [{'frame': 0, 'obj_id': 4, 'points': [[400, 250]]},
             {'frame': 2, 'obj_id': 7, 'box': [300, 150, 600, 400]}]
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'demo/demo.py'), str(bear_dir), *COMMON,
         '--task', 'interactive_video', '--frame-prompts-stdin', '--out-dir', str(tmp_path)],
        input='\n'.join(json.dumps(x) for x in lines), capture_output=True, text=True,
        cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'RANDOM weights' in proc.stderr and 'p90' in proc.stdout
    _check_video_outputs(tmp_path / f'{bear_dir.name}_interactive_video', 4, [4, 7])


# ---------------------------------------------------------------------- bad inputs
@pytest.fixture
def bad_files(tmp_path, bear):
    (tmp_path / 'broken.jpg').write_bytes(b'not a jpeg')
    (tmp_path / 'broken.mp4').write_bytes(b'not a video')
    Image.open(bear[1]).resize((W // 2, H // 2), Image.NEAREST).save(tmp_path / 'small.png')
    (tmp_path / 'typo.json').write_text(json.dumps([{'frame': 0, 'obj_id': 1, 'point': [[1, 2]]}]))
    (tmp_path / 'late.json').write_text(json.dumps([{'frame': 9, 'obj_id': 1, 'box': [1, 1, 5, 5]}]))
    return tmp_path


@pytest.mark.parametrize('args, message', [
    (['{tmp}/broken.jpg', '--task', 'panoptic'], 'input image .*broken.jpg cannot be read as an image'),
    (['{tmp}/missing.jpg', '--task', 'panoptic'], 'input image not found: .*missing.jpg'),
    (['{tmp}/broken.mp4', '--task', 'vos', '--first-mask', '{tmp}/small.png'],
     'cannot read video input .*broken.mp4'),
    (['{coco}', '--task', 'interactive_image', '--points', '10,20,1 10,x,1'],
     "bad token '10,x,1'"),
    (['{coco}', '--task', 'interactive_image', '--points', '10,20,3'], "bad click '10,20,3'"),
    (['{coco}', '--task', 'interactive_image', '--boxes', '1,2,3'], "bad token '1,2,3'"),
    (['{coco}', '--task', 'interactive_image', '--points', '10,20,1', '--texts', 'a; b'],
     'same number of objects'),
    (['{coco}', '--task', 'interactive_image', '--points', '5000,20,1'], 'lies outside'),
    (['{coco}', '--task', 'interactive_image'], 'needs prompts'),
    (['{bear}', '--task', 'vos', '--first-mask', '{tmp}/small.png'],
     r'small.png is 427x240 \(WxH\) but the frames are 854x480'),
    (['{bear}', '--task', 'vos', '--points', '1,1,1', '--first-mask', '{tmp}/small.png'],
     'vos does not take --points'),
    (['{bear}', '--task', 'interactive_video', '--prompts-file', '{tmp}/typo.json'],
     r"typo.json entry 0: unknown keys \['point'\]"),
    (['{bear}', '--task', 'interactive_video', '--prompts-file', '{tmp}/late.json'],
     'frame 9 is past the end of the video'),
    (['{bear}', '--task', 'interactive_video'], 'needs prompts'),
])
def test_bad_inputs_name_the_culprit(demo, bad_files, bear_dir, coco_image, args, message):
    argv = [a.format(tmp=bad_files, coco=coco_image, bear=bear_dir) for a in args]
    with pytest.raises(SystemExit, match=message):
        demo.main(argv + COMMON)


def test_unknown_task_is_rejected(demo, coco_image, capsys):
    with pytest.raises(SystemExit) as e:
        demo.main([str(coco_image), *COMMON, '--task', 'segment_everything'])
    assert e.value.code == 2 and "invalid choice: 'segment_everything'" in capsys.readouterr().err
