"""tools/dataset_converters/make_pseudo_labels.py: DAVIS propagation and COCO json modes, with a tiny
random SAM2 teacher end to end and with a scripted teacher for the propagation / selection logic."""
import io
import json
import runpy

import numpy as np
import pytest
import torch
from mmengine.utils import ProgressBar
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from seg.datasets.davis import scan_davis_sequence
from seg.evaluation.davis import davis_palette, read_davis_png, write_davis_png
from seg.models.teachers import TINY_SAM2_OVERRIDES, TeacherOutput
from tests.conftest import REPO_ROOT

TOOL = runpy.run_path(str(REPO_ROOT / 'tools/dataset_converters/make_pseudo_labels.py'),
                      run_name='tool_under_test')
H, W = 48, 64
TINY_TEACHER = ['--allow-random-init', '--teacher-image-size', '128', '--device', 'cpu',
                '--teacher-overrides', *TINY_SAM2_OVERRIDES]


def _write_image(path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(path)


@pytest.fixture
def davis_root(tmp_path):
    """One 3-frame sequence, objects 1 and 2 annotated on the first frame only (palette PNG)."""
    root = tmp_path / 'davis'
    for t in range(3):
        _write_image(root / 'JPEGImages/480p/blobs' / f'{t:05d}.jpg', t)
    first = np.zeros((H, W), np.uint8)
    first[10:30, 5:25] = 1
    first[20:40, 35:60] = 2
    write_davis_png(first, root / 'Annotations/480p/blobs/00000.png')
    return root


def test_davis_mode_writes_palette_pngs_of_the_annotated_ids(davis_root, tmp_path):
    out = tmp_path / 'pseudo'
    summary = TOOL['main'](['davis', str(davis_root), str(out), *TINY_TEACHER])
    assert summary['sequences'] == 1 and summary['frames'] == 3
    pngs = sorted((out / 'Annotations/480p/blobs').glob('*.png'))
    assert [p.name for p in pngs] == ['00000.png', '00001.png', '00002.png']
    for png in pngs:
        with Image.open(png) as im:
            assert im.mode == 'P' and im.size == (W, H) and im.getpalette() == davis_palette()
        assert set(np.unique(read_davis_png(png)).tolist()) <= {0, 1, 2}
    # frame 0 is the given annotation
    np.testing.assert_array_equal(read_davis_png(pngs[0]),
                                  read_davis_png(davis_root / 'Annotations/480p/blobs/00000.png'))
    # the output is a DAVIS root: its frames are the source frames
    assert (out / 'JPEGImages/480p/blobs/00001.jpg').is_file()


class ShiftTeacher:
    """Answers each mask prompt with that mask moved 3 px right (logits +-10), and records the
    prompts; object 2 is 'lost' on frame 1 (an empty answer)."""

    def __init__(self):
        self.prompts = []

    def __call__(self, images, prompts, mask_size=None):
        p = prompts[0]
        self.prompts.append(p)
        masks = torch.roll(p.masks, 3, dims=-1)
        if len(self.prompts) == 1:
            masks[1] = 0
        return TeacherOutput([], masks * 20 - 10, torch.ones(len(p)), torch.ones(len(p), dtype=torch.bool))


def test_each_frame_is_prompted_with_the_previous_mask_and_its_box(davis_root, tmp_path):
    teacher = ShiftTeacher()
    frames = scan_davis_sequence(str(davis_root), '480p', 'blobs')
    out = tmp_path / 'seq'
    TOOL['propagate_sequence'](teacher, frames, 'palette', out, 'cpu', ProgressBar(3, file=io.StringIO()))
    first = read_davis_png(davis_root / 'Annotations/480p/blobs/00000.png')
    frame1, frame2 = read_davis_png(out / '00001.png'), read_davis_png(out / '00002.png')
    # object 1 moves 3 px per frame; object 2, lost on frame 1, is prompted again with its last mask
    np.testing.assert_array_equal(frame1 == 1, np.roll(first == 1, 3, axis=1))
    assert not (frame1 == 2).any()
    np.testing.assert_array_equal(frame2 == 1, np.roll(first == 1, 6, axis=1))
    np.testing.assert_array_equal(frame2 == 2, np.roll(first == 2, 3, axis=1))
    second = teacher.prompts[1]
    np.testing.assert_array_equal(second.masks[0].numpy() > 0, frame1 == 1)
    np.testing.assert_array_equal(second.masks[1].numpy() > 0, first == 2)
    # boxes: the tight xyxy box of each prompt mask (right/bottom exclusive)
    torch.testing.assert_close(second.bboxes, torch.tensor([[8., 10., 28., 30.], [35., 20., 60., 40.]]))
    assert second.box_valid.all()


def test_davis_mode_bad_inputs_fail_clearly(davis_root, tmp_path):
    with pytest.raises(SystemExit):  # argparse: --teacher-checkpoint is required
        TOOL['main'](['davis', str(davis_root), str(tmp_path / 'o')])
    with pytest.raises(FileNotFoundError, match='no-such.pt'):
        TOOL['main'](['davis', str(davis_root), str(tmp_path / 'o'), '--teacher-checkpoint',
                      str(tmp_path / 'no-such.pt'), '--teacher-image-size', '128',
                      '--teacher-overrides', *TINY_SAM2_OVERRIDES])
    with pytest.raises(FileNotFoundError, match=f"DAVIS root not found: {tmp_path / 'missing'}"):
        TOOL['main'](['davis', str(tmp_path / 'missing'), str(tmp_path / 'o'), *TINY_TEACHER])
    with pytest.raises(ValueError, match='overwrite its annotations'):
        TOOL['main'](['davis', str(davis_root), str(davis_root), *TINY_TEACHER])


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / 'images'
    for i in range(2):
        _write_image(folder / f'img{i}.png', 10 + i)
    return folder


def test_coco_boxes_mode_round_trips_through_pycocotools(image_folder, tmp_path):
    boxes = dict(images=[dict(id=7, file_name='img0.png', height=H, width=W),
                         dict(id=9, file_name='img1.png')],
                 annotations=[dict(id=1, image_id=7, bbox=[4, 6, 30, 20], category_id=3),
                              dict(id=2, image_id=7, bbox=[30, 10, 20, 30], category_id=5),
                              dict(id=3, image_id=9, bbox=[0, 0, 64, 48], category_id=3)],
                 categories=[dict(id=3, name='cat'), dict(id=5, name='dog')])
    boxes_file = tmp_path / 'boxes.json'
    boxes_file.write_text(json.dumps(boxes))
    out = tmp_path / 'out.json'
    summary = TOOL['main'](['coco', str(image_folder), str(out), '--boxes', str(boxes_file), *TINY_TEACHER])
    assert summary['images'] == 2 and summary['masks'] + summary['dropped'] == 3
    coco = COCO(str(out))
    assert sorted(coco.getImgIds()) == [7, 9] and coco.imgs[9]['height'] == H
    assert sorted(coco.getCatIds()) == [3, 5]
    for ann in coco.loadAnns(coco.getAnnIds()):
        source = boxes['annotations'][ann['id'] - 1]
        assert (ann['image_id'], ann['category_id']) == (source['image_id'], source['category_id'])
        mask = coco.annToMask(ann)
        assert mask.shape == (H, W) and mask.sum() == ann['area'] > 0
        np.testing.assert_allclose(ann['bbox'], mask_utils.toBbox(ann['segmentation']))
        assert 0 <= ann['score'] <= 1


class BlobTeacher:
    """Every grid click gets the same blob (rows 8-15, cols 4-11 of a 32x32 low-res grid, i.e. the
    quarter 12..24 x 8..24 px of a 48x64 image); the IoU alternates 0.9 / 0.2."""

    def __call__(self, images, prompts, mask_size=None):
        n = len(prompts[0])
        logits = torch.full((n, 32, 32), -10.0)
        logits[:, 8:16, 4:12] = 10.0
        return TeacherOutput([], logits, torch.tensor([0.9, 0.2] * (n // 2)), torch.ones(n, dtype=torch.bool))


def test_coco_automatic_mode_filters_by_iou_and_deduplicates(image_folder, tmp_path):
    out = tmp_path / 'auto.json'
    summary = TOOL['coco_pseudo_labels'](BlobTeacher(), str(image_folder), str(out), points_per_side=4,
                                         min_iou=0.5, nms_iou=0.7)
    assert summary == dict(images=2, masks=2, dropped=30, images_per_s=pytest.approx(summary['images_per_s']))
    coco = COCO(str(out))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == ['object']
    for ann in coco.loadAnns(coco.getAnnIds()):
        assert ann['bbox'] == [8.0, 12.0, 16.0, 12.0] and ann['score'] == pytest.approx(0.9)
    with pytest.raises(FileNotFoundError, match='no image'):
        TOOL['coco_pseudo_labels'](BlobTeacher(), str(tmp_path), str(out))
