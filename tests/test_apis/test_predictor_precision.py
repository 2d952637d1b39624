"""The predictors' ``precision``: bf16 autocast on CPU gives the fp32 masks (IoU >= 0.9) for an image
click and a VOS propagation over real DAVIS frames (tiny FastSAM2, random init, 256 px), returns
float32 / bool outputs, and rejects unknown precisions by name.

Random weights make large, blobby masks, so the masks compared are thresholded at the median of
the fp32 logits (half the image each): agreement then means the two precisions rank the pixels
alike, which a wrong or ignored autocast would not keep to 0.9 by chance."""
import numpy as np
import pytest
import torch
from PIL import Image

from seg.apis import FastSAM2ImagePredictor, FastSAM2VideoPredictor, SegPredictor
from seg.apis.image_predictor import build_model
from tests.conftest import REPO_ROOT

TINY = str(REPO_ROOT / 'configs/fastsam2/model_fastsam2_tiny.py')


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match='RANDOM weights'):
        return build_model(TINY, None, image_size=256)


@pytest.fixture(scope='module')
def cows(shared_data):
    """Frames 0..3 of DAVIS-2016 cows (RGB) and the frame-0 ground-truth mask."""
    root = shared_data / 'davis2016'
    frames = [np.array(Image.open(root / f'JPEGImages/480p/cows/{t:05d}.jpg').convert('RGB'))
              for t in range(4)]
    return frames, np.array(Image.open(root / 'Annotations/480p/cows/00000.png')) > 0


def _median_iou(ref: np.ndarray, other: np.ndarray) -> float:
    thr = np.median(ref)
    a, b = ref > thr, other > thr
    return float((a & b).sum() / (a | b).sum())


def test_image_click_bf16_matches_fp32(model, cows):
    frames, gt = cows
    ys, xs = np.nonzero(gt)
    click = [[int(np.median(xs)), int(np.median(ys))]]  # on the cow
    out = {}
    for precision in ('fp32', 'bf16'):
        predictor = FastSAM2ImagePredictor(model, precision=precision)
        predictor.set_image(frames[0])
        logits, scores, low = predictor.predict(point_coords=click, point_labels=[1],
                                                multimask_output=False, return_logits=True)
        masks, _, _ = predictor.predict(point_coords=click, point_labels=[1],
                                        multimask_output=False)
        assert logits.dtype == scores.dtype == low.dtype == np.float32 and masks.dtype == bool
        assert predictor.get_image_embedding().dtype == torch.float32
        out[precision] = logits, low, masks
    (ref, ref_low, ref_mask), (got, got_low, got_mask) = out['fp32'], out['bf16']
    assert np.abs(got_low - ref_low).max() > 1e-4  # bf16 did run
    iou = _median_iou(ref, got)
    binary = float((ref_mask & got_mask).sum() / (ref_mask | got_mask).sum())
    print(f'image click bf16 vs fp32: IoU at the fp32 median {iou:.4f}, of the masks {binary:.4f}')
    assert iou >= 0.9 and binary >= 0.9


def test_vos_propagation_bf16_matches_fp32(model, cows):
    frames, gt = cows
    out = {}
    for precision in ('fp32', 'bf16'):
        predictor = FastSAM2VideoPredictor(model, return_logits=True, precision=precision)
        state = predictor.init_state(frames)
        predictor.add_new_mask(state, frame_idx=0, obj_id=1, mask=gt)
        out[precision] = [(idx, ids, masks) for idx, ids, masks in
                          predictor.propagate_in_video(state)]
    assert [(i, ids) for i, ids, _ in out['bf16']] == [(t, [1]) for t in range(4)]
    ious = []
    for (_, _, ref), (_, _, got) in zip(out['fp32'][1:], out['bf16'][1:]):  # the 3 propagated
        assert got.dtype == torch.float32 and got.shape == (1, 1, *gt.shape)
        assert (got - ref).abs().max() > 1e-4  # bf16 did run
        ious.append(_median_iou(ref.numpy(), got.numpy()))
    print('VOS bf16 vs fp32, IoU at the fp32 median per propagated frame:',
          [f'{v:.4f}' for v in ious])
    assert min(ious) >= 0.9


def test_bad_precision_is_named(model):
    for make in (FastSAM2ImagePredictor, FastSAM2VideoPredictor, SegPredictor):
        with pytest.raises(ValueError, match="precision must be one of fp32, fp16, bf16, got 'half'"):
            make(model, precision='half')


def test_predictors_inside_a_callers_autocast(model, cows):
    """SAM2's README runs its predictors inside ``torch.autocast(..., dtype=torch.bfloat16)``;
    FastSAM2's run there too (the kept float16 mask grids once met autocast's ``stack``) and
    still return float32 scores and bool masks."""
    frames, gt = cows
    video = FastSAM2VideoPredictor(model)
    image = FastSAM2ImagePredictor(model)
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16):
        state = video.init_state(frames[:2])
        _, ids, masks = video.add_new_mask(state, frame_idx=0, obj_id=1, mask=gt)
        propagated = list(video.propagate_in_video(state))
        image.set_image(frames[0])
        image_masks, scores, _ = image.predict(point_coords=[[300, 200]], point_labels=[1])
    assert ids == [1] and masks.dtype == torch.bool and masks.shape == (1, 1, *gt.shape)
    assert [(idx, obj_ids) for idx, obj_ids, _ in propagated] == [(0, [1]), (1, [1])]
    assert all(m.dtype == torch.bool for _, _, m in propagated)
    assert image_masks.dtype == bool and scores.dtype == np.float32
