import mmcv
import numpy as np
import pytest
import torch

from seg.apis import ModelClickPredictor, SegPredictor, draw_panoptic, draw_prompt_result
from seg.evaluation.interactive import mask_iou, run_click_session
from tests.conftest import REPO_ROOT

CFG = str(REPO_ROOT / 'configs/rapsam/rapsam_tiny_coco_panoptic.py')


@pytest.fixture(scope='module')
def predictor():
    with pytest.warns(UserWarning, match='RANDOM weights'):
        return SegPredictor.from_config(CFG, image_size=128,
                                        cfg_options={'model.test_cfg.object_mask_thr': 0.0})


@pytest.fixture(scope='module')
def image(shared_data):
    return mmcv.imread(str(shared_data / 'coco_panoptic_sample/input_images/000000439180.jpg'))


def test_prompts_in_image_pixels_are_scaled_to_the_network_input(predictor, image):
    h, w = image.shape[:2]
    res = predictor.prompt(image, points=[[[320, 180], [10, 10]]], point_labels=[[1, 0]],
                           boxes=[[100, 50, 400, 300]])
    s = 128 / max(h, w)
    assert res.scale_factor == pytest.approx((s, s), rel=1e-2)
    assert torch.allclose(res.prompts.points[0, 0], torch.tensor([320 * s, 180 * s]), rtol=1e-2)
    assert res.pred_instances.masks.shape == (1, h, w)  # back at the original resolution
    overlay = draw_prompt_result(image, res, predictor.class_names)
    assert overlay.shape == image.shape


def test_panoptic_at_original_resolution(predictor, image):
    res = predictor.panoptic(image)
    assert res.pred_panoptic_seg.sem_seg.shape == (1, *image.shape[:2])
    assert draw_panoptic(image, res, predictor.class_names).shape == image.shape
    res.pred_panoptic_seg.sem_seg[:] = len(predictor.class_names)  # all void still draws
    assert (draw_panoptic(image, res, predictor.class_names) == image[..., ::-1]).all()


def test_bad_inputs_name_the_problem(predictor, image, tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        predictor.panoptic(str(tmp_path / 'nope.jpg'))
    with pytest.raises(ValueError, match=r'must be uint8 \(0..255\), got dtype float32'):
        predictor.panoptic(image.astype(np.float32))
    with pytest.raises(ValueError, match='image size'):
        predictor.prompt(image, masks=np.zeros((1, 5, 5)))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        SegPredictor.from_config(CFG, checkpoint=str(tmp_path / 'missing.pth'))


def test_click_predictor_runs_the_protocol(predictor, image):
    gt = np.zeros(image.shape[:2], np.int64)
    gt[100:200, 150:300] = 1
    click_model = ModelClickPredictor(predictor)
    session = run_click_session(image, gt, click_model, max_clicks=3)
    assert len(session.clicks) == 3 and session.ious.shape == (3, )
    # the protocol's first click: positive, at the object's centre (farthest from its border, 50 px)
    first = session.clicks[0]
    assert first.is_positive and 149 <= first.y <= 150 and 199 <= first.x <= 250
    # the session's round-1 IoU is the IoU of what the model predicts for that one click
    logits = click_model(image, session.clicks[:1], None)
    assert logits.shape == image.shape[:2] and np.isfinite(logits).all()
    pred = torch.as_tensor(logits).sigmoid().numpy() > 0.49
    assert session.ious[0] == pytest.approx(mask_iou(gt, pred), abs=1e-6)
    # later clicks are corrections: each one lands where the previous prediction was wrong
    for k in (1, 2):
        click = session.clicks[k]
        assert bool(gt[click.y, click.x]) == click.is_positive
    with pytest.raises(ValueError, match='click or a box'):
        click_model(image, [], None)


def test_eval_interactive_cli_drives_the_model(shared_data, tmp_path):
    """The COCO-SAM single-click protocol over all 50 panoptic segments of the sample, through the
    stand-alone CLI and the model factory."""
    import runpy
    root = shared_data / 'coco_panoptic_sample'
    main = runpy.run_path(str(REPO_ROOT / 'tools/evaluation/eval_interactive.py'))['main']
    kwargs = f'{{"config": "{CFG}", "image_size": 128}}'
    with pytest.warns(UserWarning, match='RANDOM weights'):
        metrics = main(['--predictor', 'seg.apis.click_predictor:build_click_predictor',
                        '--predictor-kwargs', kwargs, '--images', str(root / 'input_images'),
                        '--coco-panoptic', str(root / 'panoptic_examples.json'),
                        str(root / 'panoptic_examples'), '--max-clicks', '1', '--no-box',
                        '--out', str(tmp_path / 'm.json')])
    assert metrics['num_objects'] == 50 and 0 <= metrics['mIoU@1'] <= 1
