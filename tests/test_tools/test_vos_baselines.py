"""``tools/evaluation/vos_baselines.py``: copy-first-mask and optical-flow propagation on a
generated DAVIS-2016 root (a textured square moving over a textured background)."""
import json
import runpy
from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np
import pytest
from PIL import Image

from seg.evaluation.davis import davis_palette, evaluate_davis
from tests.conftest import REPO_ROOT

SIZE = (72, 96)  # (H, W)


def _texture(rng: np.random.Generator, h: int, w: int, blur: int) -> np.ndarray:
    """Smooth random BGR texture: trackable by Farneback (no flat regions, no aliasing)."""
    noise = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), blur)


def write_square_davis2016(root: Path, motions: Dict[str, Tuple[int, int]], num_frames: int = 8,
                           size: Tuple[int, int] = SIZE, side: int = 20, seed: int = 0) -> None:
    """A DAVIS-2016 root: per sequence a square moving ``(dx, dy)`` px per frame; JPEG frames,
    binary 0/255 annotation PNGs for every frame."""
    h, w = size
    rng = np.random.default_rng(seed)
    for seq, (dx, dy) in motions.items():
        background = _texture(rng, h, w, 2)
        background = (background - background.mean()) * 3 + 110
        patch = (_texture(rng, side, side, 1.5) - 127) * 3 + 200
        x0, y0 = w // 4, h // 4
        img_dir = root / 'JPEGImages' / '480p' / seq
        ann_dir = root / 'Annotations' / '480p' / seq
        img_dir.mkdir(parents=True)
        ann_dir.mkdir(parents=True)
        for t in range(num_frames):
            x, y = x0 + dx * t, y0 + dy * t
            img = background.copy()
            img[y:y + side, x:x + side] = patch
            cv2.imwrite(str(img_dir / f'{t:05d}.jpg'), np.clip(img, 0, 255).astype(np.uint8),
                        [cv2.IMWRITE_JPEG_QUALITY, 98])
            mask = np.zeros((h, w), np.uint8)
            mask[y:y + side, x:x + side] = 255
            Image.fromarray(mask, mode='L').save(ann_dir / f'{t:05d}.png')


@pytest.fixture(scope='module')
def tool() -> dict:
    """The script's namespace (``main`` and its helpers)."""
    return runpy.run_path(str(REPO_ROOT / 'tools/evaluation/vos_baselines.py'),
                          run_name='tool_under_test')


def test_flow_follows_the_square_and_copy_does_not(tmp_path, tool):
    root, out = tmp_path / 'davis', tmp_path / 'out'
    write_square_davis2016(root, {'right': (3, 0), 'down-left': (-2, 3)})
    metrics = tool['main'](['--davis-root', str(root), '--davis2016', '--sequences', 'right',
                             'down-left', '--out-dir', str(out)])
    copy, flow = metrics['copy'], metrics['flow']
    assert flow['J-Mean'] > 0.85 and flow['F-Mean'] > 0.85
    assert copy['J-Mean'] < 0.5
    assert flow['J&F-Mean'] > copy['J&F-Mean'] + 0.4
    # the numbers are the project's DAVIS evaluation of the written PNGs
    again = evaluate_davis(root, out / 'flow', sequences=['right', 'down-left'], binary_masks=True,
                           progress=False)
    assert again['J&F-Mean'] == pytest.approx(flow['J&F-Mean'])
    saved = json.loads((out / 'metrics.json').read_text())
    assert saved['sequences'] == ['right', 'down-left']
    assert saved['copy']['J&F-Mean'] == pytest.approx(copy['J&F-Mean'])
    # palette PNGs for every frame; the first frame is the given mask, copy repeats it
    first_gt = np.array(Image.open(root / 'Annotations/480p/right/00000.png')) > 0
    for method in ('copy', 'flow'):
        pngs = sorted((out / method / 'right').iterdir())
        assert [p.name for p in pngs] == [f'{t:05d}.png' for t in range(8)]
        for png in pngs:
            with Image.open(png) as im:
                assert im.mode == 'P' and im.getpalette()[:6] == davis_palette()[:6]
                assert set(np.unique(np.array(im)).tolist()) <= {0, 1}
        with Image.open(pngs[0]) as im:
            np.testing.assert_array_equal(np.array(im) == 1, first_gt)
    with Image.open(out / 'copy' / 'right' / '00007.png') as im:
        np.testing.assert_array_equal(np.array(im) == 1, first_gt)


def test_warp_is_backward(tool):
    """flow[y, x] points from the current frame into the previous one: an object at columns
    10..19 in the previous frame, with flow +3 in x, is at columns 7..16 now."""
    ids = np.zeros((12, 30), np.uint8)
    ids[2:8, 10:20] = 1
    flow = np.zeros((12, 30, 2), np.float32)
    flow[..., 0] = 3
    warped = tool['warp_ids'](ids, flow)
    expected = np.zeros_like(ids)
    expected[2:8, 7:17] = 1
    np.testing.assert_array_equal(warped, expected)
    # sources outside the frame are background; ids stay ids (nearest neighbour)
    ids[:, 27:] = 2
    flow[..., 0] = 5.4
    warped = tool['warp_ids'](ids, flow)
    assert set(np.unique(warped).tolist()) <= {0, 1, 2} and not warped[:, 25:].any()


def test_first_frame_without_object_is_an_error(tmp_path, tool):
    root = tmp_path / 'davis'
    write_square_davis2016(root, {'still': (0, 0)}, num_frames=3)
    Image.fromarray(np.zeros(SIZE, np.uint8), mode='L').save(
        root / 'Annotations/480p/still/00000.png')
    with pytest.raises(ValueError, match=r'still/00000\.png.*no object'):
        tool['main'](['--davis-root', str(root), '--davis2016', '--sequences', 'still',
                       '--out-dir', str(tmp_path / 'out')])
