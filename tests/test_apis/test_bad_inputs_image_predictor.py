"""Bad inputs to the image entry points (FastSAM2ImagePredictor, SegPredictor,
FastSAM2AutomaticMaskGenerator): a clear error naming the argument, or the documented result."""
import numpy as np
import pytest
import torch

from seg.apis import FastSAM2AutomaticMaskGenerator, FastSAM2ImagePredictor, SegPredictor
from tests.conftest import REPO_ROOT

CFG = str(REPO_ROOT / 'configs/fastsam2/model_fastsam2_tiny.py')
H, W = 48, 64


@pytest.fixture(scope='module')
def predictor():
    with pytest.warns(UserWarning, match='RANDOM weights'):
        p = FastSAM2ImagePredictor.from_config(CFG, image_size=64, max_input_pixels=10_000)
    p.set_image(np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8))
    return p


BAD_IMAGES = [
    (None, TypeError, 'must be an RGB uint8 array'),
    (torch.zeros(H, W, 3, dtype=torch.uint8), TypeError, 'torch.Tensor'),
    (np.full((H, W, 3), np.nan, np.float32), ValueError, 'NaN / inf'),
    (np.zeros((H, W), np.uint8), ValueError, 'grey image'),
    (np.zeros((H, W, 4), np.uint8), ValueError, r'RGB \[H, W, 3\]'),
    (np.zeros((0, W, 3), np.uint8), ValueError, 'empty image'),
    (np.zeros((200, 200, 3), np.uint8), ValueError, 'above the cap of 10000 input pixels'),
]


@pytest.mark.parametrize('image,error,match', BAD_IMAGES)
def test_set_image_rejects(predictor, image, error, match):
    fresh = FastSAM2ImagePredictor(predictor.model, max_input_pixels=10_000)
    with pytest.raises(error, match=match):
        fresh.set_image(image)
    with pytest.raises(error, match=match):
        FastSAM2AutomaticMaskGenerator(fresh).generate(image)


BAD_PROMPTS = [
    (dict(point_coords=[[np.nan, 5]], point_labels=[1]), 'point_coords has non-finite'),
    (dict(point_coords=[[np.inf, 5]], point_labels=[1]), 'point_coords has non-finite'),
    (dict(point_coords=[[5, 5, 5]], point_labels=[1]), r'\[N, 2\] or \[B, N, 2\]'),
    (dict(point_coords=[[5, 5]], point_labels=[0.5]), 'integers'),
    (dict(point_coords=[[5, 5]], point_labels=[3]), r'got \[3\]'),
    (dict(point_coords=[[5, 5]]), 'without point_labels'),
    (dict(point_labels=[1]), 'without point_coords'),
    (dict(point_coords=[[500, 5]], point_labels=[1]), 'lies outside the image'),
    (dict(point_coords=[[0.5, 0.5]], point_labels=[1], normalize_coords=False, box=[0, 0, 2, 2]),
     'box .* lies outside the image .*normalised'),
    (dict(box=[0, 0, np.nan, 5]), 'box has non-finite'),
    (dict(box=[10, 10, 5, 5]), 'x2 >= x1'),
    (dict(box=[1, 2, 3]), r'\[4\] or \[B, 4\]'),
    (dict(mask_input=np.full((1, 16, 16), np.nan)), 'mask_input has non-finite'),
    (dict(mask_input=np.zeros((1, 5, 5))), 'mask_input must be low-res logits'),
    (dict(text=[3]), 'text must be a str'),
    (dict(point_coords=[[[5, 5]], [[6, 6]]], point_labels=[[1], [1]], box=[1, 1, 9, 9]),
     'disagree on the number of objects'),
    (dict(), 'at least one of'),
]


@pytest.mark.parametrize('kwargs,match', BAD_PROMPTS)
def test_predict_rejects(predictor, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        predictor.predict(**kwargs)


def test_points_just_outside_are_clipped_not_rejected(predictor):
    inside = predictor.predict(point_coords=[[W, 10]], point_labels=[1], multimask_output=False)
    outside = predictor.predict(point_coords=[[W + 1, 10]], point_labels=[1], multimask_output=False)
    assert np.array_equal(inside[0], outside[0]) and np.isfinite(outside[1]).all()


def test_mask_to_low_res_rejects(predictor):
    with pytest.raises(ValueError, match=r'must be \[48, 64\]'):
        predictor.mask_to_low_res(np.ones((10, 10)))
    with pytest.raises(ValueError, match='NaN'):
        predictor.mask_to_low_res(np.full((H, W), np.nan))


@pytest.fixture(scope='module')
def seg_predictor(predictor):
    return SegPredictor(predictor.model, max_input_pixels=10_000)


@pytest.mark.parametrize('kwargs,match', [
    (dict(points=[[[np.nan, 1]]], point_labels=[[1]]), 'prompts.points has non-finite'),
    (dict(points=[[[900, 1]]], point_labels=[[1]]), 'outside the image'),
    (dict(boxes=[[0, 0, np.inf, 4]]), 'prompts.bboxes has non-finite'),
    (dict(masks=np.zeros((1, 5, 5))), r'mask prompts must be \[N, 48, 64\]'),
])
def test_seg_predictor_prompt_rejects(seg_predictor, predictor, kwargs, match):
    image = np.zeros((H, W, 3), np.uint8)
    with pytest.raises(ValueError, match=match):
        seg_predictor.prompt(image, **kwargs)


@pytest.mark.parametrize('image,error,match', [
    ('/nonexistent/x.jpg', FileNotFoundError, 'image file not found'),
    (np.zeros((H, W, 3), np.float64), ValueError, 'uint8'),
    (np.zeros((300, 300, 3), np.uint8), ValueError, 'above the cap'),
])
def test_seg_predictor_panoptic_rejects(seg_predictor, image, error, match):
    with pytest.raises(error, match=match):
        seg_predictor.panoptic(image)
