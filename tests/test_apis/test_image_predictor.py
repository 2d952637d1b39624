"""FastSAM2ImagePredictor (SAM2's image API) and FastSAM2AutomaticMaskGenerator on the tiny model."""
import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from PIL import Image

from seg.apis import FastSAM2AutomaticMaskGenerator, FastSAM2ImagePredictor, ModelClickPredictor
from seg.evaluation.interactive import run_click_session
from tests.conftest import REPO_ROOT

CFG = str(REPO_ROOT / 'configs/fastsam2/model_fastsam2_tiny.py')
SIZE = 128  # processing size: a 200 x 300 image becomes 85 x 128 (padded to 96 x 128)


@pytest.fixture(scope='module')
def predictor():
    with pytest.warns(UserWarning, match='RANDOM weights'):
        return FastSAM2ImagePredictor.from_config(CFG, image_size=SIZE)


@pytest.fixture(scope='module')
def image():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    img[40:120, 180:280] = (230, 40, 40)  # a distinct red region
    return img


@pytest.fixture
def backbone_calls(predictor):
    calls = []
    handle = predictor.model.backbone.register_forward_hook(lambda *_: calls.append(1))
    yield calls
    handle.remove()


def test_embedding_computed_once_and_reused(predictor, image, backbone_calls):
    predictor.set_image(image)
    assert predictor.get_image_embedding().shape[:2] == (1, 32)
    _, _, low = predictor.predict(point_coords=[[200, 80]], point_labels=[1],
                                  multimask_output=False)
    predictor.predict(point_coords=[[200, 80], [20, 20]], point_labels=[1, 0], mask_input=low)
    predictor.predict(box=[170, 30, 290, 130])
    predictor.predict(point_coords=[[[200, 80]], [[50, 150]]], point_labels=[[1], [1]])
    assert len(backbone_calls) == 1
    predictor.set_image(Image.fromarray(image))  # PIL works too, one more backbone pass
    assert len(backbone_calls) == 2


def test_refiner_projections_computed_once_per_image_and_equal_to_uncached(predictor, image):
    model = predictor.model
    projections = []
    hooks = [m.feat_proj.register_forward_hook(lambda *_: projections.append(1))
             for m in (model.mask_refiner, model.panoptic_head.prompt_refiner)]
    try:
        predictor.set_image(image)
        outs = [predictor.predict(point_coords=[[200, 80]], point_labels=[1],
                                  multimask_output=False) for _ in range(3)]
        assert len(projections) == 2  # one per refiner, on the first decode only
        predictor._feat_cache = {}  # as after a new set_image: computed again, same result
        fresh = predictor.predict(point_coords=[[200, 80]], point_labels=[1],
                                  multimask_output=False)
        assert len(projections) == 4
    finally:
        for h in hooks:
            h.remove()
    for out in outs:
        np.testing.assert_allclose(out[2], fresh[2], atol=1e-5)


def test_original_pixels_reach_the_encoder_in_input_pixels(predictor, image):
    predictor.set_image(image)
    seen = []
    enc = predictor.model.panoptic_head.prompt_encoder
    handle = enc.register_forward_hook(lambda m, args, out: seen.append((args[0][0], out)))
    try:
        _, _, pix = predictor.predict(point_coords=[[150, 100]], point_labels=[1],
                                      box=[30, 20, 90, 60], multimask_output=False,
                                      return_logits=True)
        _, _, unit = predictor.predict(point_coords=[[0.5, 0.5]], point_labels=[1],
                                       box=[0.1, 0.1, 0.3, 0.3], multimask_output=False,
                                       normalize_coords=False, return_logits=True)
    finally:
        handle.remove()
    s = SIZE / 300  # 200 x 300 -> 85 x 128: the longer side is SIZE
    sy = 85 / 200
    prompts, tokens = seen[0]
    assert torch.allclose(prompts.points[0, 0], torch.tensor([150 * s, 100 * sy]), atol=1e-4)
    assert torch.allclose(prompts.bboxes[0], torch.tensor([30 * s, 20 * sy, 90 * s, 60 * sy]),
                          atol=1e-4)
    # the click's normalised position in the padded 96 x 128 input (pixel centre)
    assert torch.allclose(tokens.point_coords[0, 0],
                          torch.tensor([(150 * s + 0.5) / 128, (100 * sy + 0.5) / 96]), atol=1e-4)
    # the same prompts given in 0..1 of the image decode to the same logits
    np.testing.assert_allclose(pix, unit, atol=1e-5)


def test_multimask_single_and_logits(predictor, image):
    predictor.set_image(image)
    masks, scores, low = predictor.predict(point_coords=[[200, 80]], point_labels=[1])
    h, w = predictor.low_res_hw
    assert masks.shape == (3, 200, 300) and masks.dtype == bool
    assert scores.shape == (3, ) and ((scores >= 0) & (scores <= 1)).all()
    assert low.shape == (3, h, w)
    assert not np.allclose(low[0], low[1]) and not np.allclose(low[1], low[2])  # real candidates
    masks, scores, low = predictor.predict(point_coords=[[200, 80]], point_labels=[1],
                                           multimask_output=False)
    assert masks.shape == (1, 200, 300) and scores.shape == (1, ) and low.shape == (1, h, w)
    logits, _, _ = predictor.predict(point_coords=[[200, 80]], point_labels=[1],
                                     multimask_output=False, return_logits=True)
    assert logits.dtype == np.float32 and ((logits > 0) == masks).all()


def test_multimask_output_skips_the_single_mask_refiners(predictor, image):
    """SAM2's ``multimask_output=True`` returns only the candidates, which read the prompt query,
    not the refined single mask nor the prompt's class: the refiners and the class embeddings are
    not run, and the candidates equal those of a decode that does run them."""
    model = predictor.model
    head = model.panoptic_head
    refined, classified = [], []
    hooks = [m.register_forward_hook(lambda *_: refined.append(1))
             for m in (model.mask_refiner, head.prompt_refiner)]
    hooks += [s.cls_embed.register_forward_hook(lambda *_: classified.append(1))
              for s in (*head.stages, head.prompt_adaptor)]
    try:
        predictor.set_image(image)
        masks, scores, low = predictor.predict(point_coords=[[200, 80]], point_labels=[1])
        assert refined == [] and classified == [] and low.shape[0] == 3
        predictor.predict(point_coords=[[200, 80]], point_labels=[1], multimask_output=False)
        assert len(refined) == 2  # the single mask goes through both
        assert len(classified) > 0  # and its score may come from its class
        refined.clear()
        prompts = predictor._prep_prompts(0, [[200, 80]], [1], None, None, None, True)[0]
        with torch.no_grad():
            full, _ = model.decode_prompts(predictor._features, [prompts], predictor._input_hw,
                                           multimask=True, feat_cache={})
        assert len(refined) == 2  # single_mask=True (the default) refines
    finally:
        for h in hooks:
            h.remove()
    np.testing.assert_allclose(full.prm_multi_mask[0].numpy(), low, atol=1e-5)
    np.testing.assert_allclose(full.prm_multi_iou[0].numpy(), scores, atol=1e-6)


def test_objects_are_independent(predictor, image):
    """Object A's logits do not move when object B (more clicks, a box) is decoded with it."""
    predictor.set_image(image)
    _, score_a, low_a = predictor.predict(point_coords=[[200, 80]], point_labels=[1],
                                          multimask_output=False)
    _, scores, low = predictor.predict(point_coords=[[[200, 80], [0, 0]], [[50, 150], [60, 20]]],
                                       point_labels=[[1, -1], [1, 0]], multimask_output=False)
    assert low.shape[0] == 2
    np.testing.assert_allclose(low[0], low_a, atol=1e-5)
    np.testing.assert_allclose(scores[0], score_a, atol=1e-5)
    _, _, multi_a = predictor.predict(point_coords=[[200, 80]], point_labels=[1])
    _, _, multi = predictor.predict(point_coords=[[[200, 80]], [[50, 150]]], point_labels=[[1], [1]])
    np.testing.assert_allclose(multi[0], multi_a, atol=1e-5)


def test_predict_batch_matches_single_images(predictor, image):
    small = image[:100, :150].copy()
    predictor.set_image_batch([image, small])
    masks, scores, low = predictor.predict_batch([[[200, 80]], [[20, 30]]], [[1], [1]],
                                                 box_batch=[None, [10, 10, 100, 90]],
                                                 multimask_output=False)
    assert masks[0].shape == (1, 200, 300) and masks[1].shape == (1, 100, 150)
    with pytest.raises(RuntimeError, match='predict_batch'):
        predictor.predict(point_coords=[[200, 80]], point_labels=[1])
    predictor.set_image(image)  # the larger image pads to the same input alone
    _, score0, low0 = predictor.predict(point_coords=[[200, 80]], point_labels=[1],
                                        multimask_output=False)
    np.testing.assert_allclose(low[0], low0, atol=1e-4)
    np.testing.assert_allclose(scores[0], score0, atol=1e-4)


def test_adopted_and_stacked_embeddings_decode_as_their_own(predictor, image, backbone_calls):
    flipped = image[:, ::-1].copy()
    predictor.set_image_batch([image, flipped])  # one backbone pass for both
    sessions = [FastSAM2ImagePredictor(predictor.model) for _ in range(2)]
    for i, session in enumerate(sessions):
        session.adopt_image(predictor, i)
    batch = FastSAM2ImagePredictor.stack(sessions)
    _, scores, low = batch.predict_batch([[[200, 80]], [[100, 80]]], [[1], [1]],
                                         multimask_output=False)
    assert len(backbone_calls) == 1
    for i, (session, img) in enumerate(zip(sessions, (image, flipped))):
        _, score, alone = session.predict(point_coords=[[200, 80] if i == 0 else [100, 80]],
                                          point_labels=[1], multimask_output=False)
        np.testing.assert_allclose(low[i], alone, atol=1e-4)
        np.testing.assert_allclose(scores[i], score, atol=1e-4)
    with pytest.raises(ValueError, match='no image 2'):
        sessions[0].adopt_image(predictor, 2)
    with pytest.raises(ValueError, match='one image each'):
        FastSAM2ImagePredictor.stack([predictor])
    assert len(backbone_calls) == 1


def test_bad_inputs_name_the_problem(predictor, image):
    fresh = FastSAM2ImagePredictor(predictor.model)
    with pytest.raises(RuntimeError, match='set_image'):
        fresh.predict(point_coords=[[1, 1]], point_labels=[1])
    with pytest.raises(ValueError, match='uint8'):
        fresh.set_image(image.astype(np.float32))
    with pytest.raises(ValueError, match=r'RGB \[H, W, 3\]'):
        fresh.set_image(image[..., 0])
    fresh.set_image(image)
    with pytest.raises(ValueError, match='outside the image'):
        fresh.predict(point_coords=[[310, 10]], point_labels=[1])
    with pytest.raises(ValueError, match='outside the image'):
        fresh.predict(box=[0, 0, 50, 250])
    with pytest.raises(ValueError, match='mask_input must be low-res logits'):
        fresh.predict(point_coords=[[10, 10]], point_labels=[1], mask_input=np.zeros((1, 5, 5)))
    with pytest.raises(ValueError, match='one label per point'):
        fresh.predict(point_coords=[[10, 10], [20, 20]], point_labels=[1])
    with pytest.raises(ValueError, match='point_labels must be 1'):
        fresh.predict(point_coords=[[10, 10]], point_labels=[2])
    with pytest.raises(ValueError, match='number of objects'):
        fresh.predict(point_coords=[[[10, 10]], [[20, 20]]], point_labels=[[1], [1]],
                      box=[0, 0, 5, 5])
    with pytest.raises(ValueError, match='at least one'):
        fresh.predict()
    fresh.reset_predictor()
    with pytest.raises(RuntimeError, match='set_image'):
        fresh.get_image_embedding()


def test_click_predictor_reuses_the_embedding(predictor, image, backbone_calls):
    gt = np.zeros(image.shape[:2], np.int64)
    gt[40:120, 180:280] = 1
    clicker = ModelClickPredictor(predictor)
    session = run_click_session(image[..., ::-1].copy(), gt, clicker, max_clicks=3)
    assert len(session.clicks) == 3 and session.ious.shape == (3, )
    assert len(backbone_calls) == 1  # one image, three clicks


def test_automatic_mask_generator_output_format(predictor, image):
    amg = FastSAM2AutomaticMaskGenerator(predictor, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                                         box_nms_thresh=0.9)
    records = amg.generate(image)
    assert records, 'random weights at zero thresholds still give masks'
    keys = {'segmentation', 'area', 'bbox', 'predicted_iou', 'point_coords', 'stability_score',
            'crop_box'}
    for r in records:
        assert set(r) == keys
        seg = r['segmentation']
        assert seg.shape == (200, 300) and seg.dtype == bool and r['area'] == seg.sum()
        x, y, w, h = r['bbox']
        ys, xs = np.nonzero(seg)
        assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max(), ys.max())
        px, py = r['point_coords'][0]
        assert seg[int(py), int(px)]
        assert r['crop_box'] == [0, 0, 300, 200]
    assert [r['predicted_iou'] for r in records] == sorted((r['predicted_iou'] for r in records),
                                                           reverse=True)
    strict = FastSAM2AutomaticMaskGenerator(predictor.model, pred_iou_thresh=1.0)
    assert strict.generate(image) == []
    rle = FastSAM2AutomaticMaskGenerator(predictor, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                                         box_nms_thresh=0.9, min_mask_region_area=20,
                                         output_mode='coco_rle').generate(image)
    assert rle and isinstance(rle[0]['segmentation']['counts'], str)
    decoded = mask_utils.decode(dict(rle[0]['segmentation'], counts=rle[0]['segmentation']['counts']))
    assert decoded.shape == (200, 300) and decoded.sum() == rle[0]['area']
    with pytest.raises(ValueError, match='output_mode'):
        FastSAM2AutomaticMaskGenerator(predictor, output_mode='png')
