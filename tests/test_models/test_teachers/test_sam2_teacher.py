"""SAM2Teacher: outputs per level and per prompt row, prompt geometry, frozen state, checkpoints."""
import re
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sam2.sam2_image_predictor import SAM2ImagePredictor

from seg.models.teachers import TINY_SAM2_OVERRIDES, SAM2Teacher, sam2_teacher
from seg.structures.prompts import build_prompts

S = 128           # the teacher's square input
H, W = 32, 64     # a non-square student input: x is scaled by 2, y by 4


def _teacher(**kwargs) -> SAM2Teacher:
    return SAM2Teacher(**{**dict(image_size=S, overrides=TINY_SAM2_OVERRIDES, allow_random_init=True),
                          **kwargs})


@pytest.fixture(scope='module')
def teacher() -> SAM2Teacher:
    torch.manual_seed(0)
    return _teacher()


def _images(n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, H, W) * 255


def _mixed_prompts():
    """Image 0: click, clicks + box, text only; image 1: mask + click, box only."""
    p0 = build_prompts(points=[[[10, 12]], [[30, 20], [5, 5]], []], point_labels=[[1], [1, 0], []],
                       bboxes=[[0, 0, 0, 0], [4, 6, 40, 30], [0, 0, 0, 0]],
                       box_valid=[False, True, False], texts=['', '', 'a cat'])
    m = torch.zeros(2, H, W)
    m[0, 4:20, 8:40] = 1
    p1 = build_prompts(points=[[[20, 10]], []], point_labels=[[1], []], bboxes=[[0, 0, 0, 0], [2, 2, 50, 28]],
                       box_valid=[False, True], masks=m)
    return [p0, p1]


def test_feature_levels_shapes_channels_and_strides(teacher):
    out = teacher(_images())
    assert teacher.feature_strides == [4, 8, 16]
    # levels 0/1 after the decoder's high-res projections (width/8, width/4), level 2 the embedding
    assert teacher.feature_channels == [4, 8, 32]
    assert [tuple(f.shape) for f in out.feats] == [(2, c, S // s, S // s) for c, s in
                                                   zip(teacher.feature_channels, teacher.feature_strides)]
    assert out.mask_logits is None and out.iou_pred is None and out.valid is None
    one = _teacher(feature_levels=(2, ))
    one.load_state_dict(teacher.state_dict())
    images = _images()
    only = one(images).feats
    assert one.feature_channels == [32] and one.feature_strides == [16] and len(only) == 1
    assert torch.equal(only[0], teacher(images).feats[2])
    with pytest.raises(ValueError, match=r'feature_levels must be a non-empty subset of 0\.\.2'):
        _teacher(feature_levels=(3, ))


def test_one_mask_per_prompt_row_and_text_only_rows_are_invalid(teacher):
    out = teacher(_images(), _mixed_prompts(), mask_size=(8, 16))
    assert out.mask_logits.shape == (5, 8, 16) and out.iou_pred.shape == (5, )
    assert out.valid.tolist() == [True, True, False, True, True]
    assert (out.mask_logits[2] == 0).all() and out.iou_pred[2] == 0
    assert all((out.mask_logits[i] != 0).any() for i in (0, 1, 3, 4))
    # default grid: SAM2's low-res logits (image_size / 4 square)
    low = teacher(_images(), [None, _mixed_prompts()[1]])
    assert low.mask_logits.shape == (2, S // 4, S // 4) and low.valid.all()
    empty = teacher(_images(), [None, None], mask_size=(8, 16))
    assert empty.mask_logits.shape == (0, 8, 16) and empty.valid.shape == (0, )
    with pytest.raises(ValueError, match='1 prompt entries for 2 images'):
        teacher(_images(), [None])


def test_frozen_no_grads_and_eval_after_train(teacher):
    teacher.train()
    assert not any(m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())
    images = _images().requires_grad_()
    with torch.enable_grad():
        out = teacher(images, _mixed_prompts())
    assert not any(t.requires_grad for t in [*out.feats, out.mask_logits, out.iou_pred])


def test_seeded_random_teacher_does_not_depend_on_what_was_built_before():
    torch.manual_seed(0)
    first = _teacher().sam.state_dict()
    torch.manual_seed(123)
    torch.randn(1000)  # another module built before the teacher
    state = torch.random.get_rng_state()
    second = _teacher().sam.state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's stream is untouched
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = _teacher(random_init_seed=1).sam.state_dict()
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_checkpoint_errors_name_the_path_and_the_key(tmp_path):
    missing = tmp_path / 'nope' / 'sam2.1_hiera_tiny.pt'
    named = re.escape(str(missing)) + r'.*model\.teacher\.checkpoint.*--teacher-checkpoint'
    with pytest.raises(FileNotFoundError, match=named):
        _teacher(checkpoint=str(missing), allow_random_init=False)
    with pytest.raises(ValueError, match=r'model\.teacher\.checkpoint.*--teacher-checkpoint'):
        SAM2Teacher(image_size=S, overrides=TINY_SAM2_OVERRIDES)
    wrong = tmp_path / 'wrong.pt'
    torch.save({'model': {'not_a_sam2_key': torch.zeros(1)}}, wrong)
    with pytest.raises(ValueError, match='does not match the SAM2 config'):
        _teacher(checkpoint=str(wrong))


def test_saved_checkpoint_reproduces_the_outputs_exactly(teacher, tmp_path):
    path = tmp_path / 'tiny_sam2.pt'
    torch.save({'model': teacher.sam.state_dict()}, path)  # SAM2's released layout
    torch.manual_seed(123)  # another random init, overwritten by the checkpoint
    loaded = _teacher(checkpoint=str(path), allow_random_init=False)
    images, prompts = _images(), _mixed_prompts()
    a, b = teacher(images, prompts), loaded(images, prompts)
    for x, y in zip([*a.feats, a.mask_logits, a.iou_pred], [*b.feats, b.mask_logits, b.iou_pred]):
        assert torch.equal(x, y)


@contextmanager
def _spy(module, with_output: bool = False):
    """Record the keyword arguments (and outputs) of ``module``'s calls inside the block."""
    calls = []
    handle = (module.register_forward_hook(lambda m, args, kwargs, out: calls.append((kwargs, out)),
                                           with_kwargs=True) if with_output else
              module.register_forward_pre_hook(lambda m, args, kwargs: calls.append(kwargs),
                                               with_kwargs=True))
    try:
        yield calls
    finally:
        handle.remove()


def test_prompt_geometry_on_a_non_square_input(teacher):
    box = build_prompts(points=[[[10, 6], [1, 1]]], point_labels=[[0, -1]],
                        bboxes=[[8, 4, 40, 24]], box_valid=[True])
    click = build_prompts(points=[[[10, 20]]], point_labels=[[1]])
    with _spy(teacher.sam.sam_prompt_encoder) as encoder_calls, \
            _spy(teacher.sam.sam_mask_decoder, with_output=True) as decoder_calls:
        out = teacher(_images(), [box, click])
    # one decoder call per image and kind: box + click (single mask), the lone click (3 candidates)
    box_call, click_call = encoder_calls
    coords, labels = box_call['points']
    # corners (x*2, y*4) labelled 2/3 ahead of the negative click; the all-padding column is dropped
    torch.testing.assert_close(coords, torch.tensor([[[16., 16.], [80., 96.], [20., 24.]]]))
    assert labels.tolist() == [[2, 3, 0]] and box_call['boxes'] is None and box_call['masks'] is None
    coords, labels = click_call['points']
    torch.testing.assert_close(coords, torch.tensor([[[20., 80.]]]))
    assert labels.tolist() == [[1]]
    assert [kw['multimask_output'] for kw, _ in decoder_calls] == [False, True]
    # the kept candidate of the lone click is the one with the highest predicted IoU
    cand_masks, cand_iou = decoder_calls[1][1][:2]
    best = cand_iou[0].argmax()
    assert out.iou_pred[1] == cand_iou[0, best]
    torch.testing.assert_close(out.mask_logits[1], cand_masks[0, best].clamp(-32, 32))


def test_each_row_is_decoded_on_its_own_image(teacher):
    images = _images()
    prompts = [build_prompts(points=[[[10, 12]]], point_labels=[[1]]),
               build_prompts(points=[[[10, 12]]], point_labels=[[1]])]
    both = teacher(images, prompts)
    alone = teacher(images[1:], prompts[1:])
    torch.testing.assert_close(both.mask_logits[1], alone.mask_logits[0])
    assert not torch.allclose(both.mask_logits[0], both.mask_logits[1])


def test_rows_decoded_in_chunks_give_the_same_masks(teacher, monkeypatch):
    images = _images()
    grid = torch.stack(torch.meshgrid(torch.arange(5.) * 10 + 5, torch.arange(3.) * 8 + 4,
                                      indexing='xy'), -1).reshape(-1, 1, 2)  # 15 clicks
    prompts = [build_prompts(points=grid, point_labels=torch.ones(15, 1, dtype=torch.long)), None]
    whole = teacher(images, prompts)
    monkeypatch.setattr(sam2_teacher, 'DECODER_ROWS', 4)
    with _spy(teacher.sam.sam_mask_decoder) as calls:
        chunked = teacher(images, prompts)
    assert len(calls) == 4
    torch.testing.assert_close(chunked.mask_logits, whole.mask_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(chunked.iou_pred, whole.iou_pred, atol=1e-6, rtol=0)


def test_mask_prompt_resized_over_the_input_and_mapped_to_logits(teacher):
    m = torch.zeros(1, H, W)
    m[:, :, :W // 2] = 1  # left half of the input -> left half of the square
    with _spy(teacher.sam.sam_prompt_encoder) as encoder_calls:
        teacher(_images(1), [build_prompts(masks=m)])
    mask_in = encoder_calls[0]['masks']
    assert mask_in.shape == (1, 1, S // 4, S // 4)
    assert (mask_in[..., :, :S // 8 - 1] == 10).all() and (mask_in[..., :, S // 8 + 1:] == -10).all()
    coords, labels = encoder_calls[0]['points']
    assert coords.shape == (1, 0, 2)  # no click or box: SAM2 pads one empty point itself


def test_matches_sam2_image_predictor(teacher):
    """Same model, same image: the teacher's logits equal SAM2's own predictor's for a lone click
    (its best-IoU candidate) and for a box with a click on a non-square image."""
    image = (torch.rand(H, W, 3) * 255).to(torch.uint8).numpy()
    predictor = SAM2ImagePredictor(teacher.sam)
    predictor._bb_feat_sizes = [(S // 4, S // 4), (S // 8, S // 8), (S // 16, S // 16)]  # it assumes 1024
    predictor.set_image(image)
    _, ious, low = predictor.predict(point_coords=np.array([[10., 20.]]), point_labels=np.array([1]),
                                     multimask_output=True, return_logits=True)
    _, box_iou, box_low = predictor.predict(point_coords=np.array([[30., 20.]]), point_labels=np.array([0]),
                                            box=np.array([4., 6., 40., 30.]), multimask_output=False,
                                            return_logits=True)
    prompts = [build_prompts(points=[[[10, 20]], [[30, 20]]], point_labels=[[1], [0]],
                             bboxes=[[0, 0, 0, 0], [4, 6, 40, 30]], box_valid=[False, True])]
    out = teacher(torch.from_numpy(image).permute(2, 0, 1)[None].float(), prompts)
    torch.testing.assert_close(out.mask_logits[0], torch.from_numpy(low[ious.argmax()]), atol=1e-3, rtol=0)
    torch.testing.assert_close(out.mask_logits[1], torch.from_numpy(box_low[0]), atol=1e-3, rtol=0)
    torch.testing.assert_close(out.iou_pred, torch.tensor([ious.max(), box_iou[0]]), atol=1e-4, rtol=0)


@pytest.mark.parametrize('dtype', ['bf16', 'fp16'])
def test_autocast_dtypes_run_and_return_fp32(teacher, dtype):
    half = _teacher(dtype=dtype)
    half.load_state_dict(teacher.state_dict())
    images, prompts = _images(), _mixed_prompts()
    ref, out = teacher(images, prompts), half(images, prompts)
    for r, o in zip([*ref.feats, ref.mask_logits], [*out.feats, out.mask_logits]):
        assert o.dtype == torch.float32 and torch.isfinite(o).all()
        assert F.cosine_similarity(r.flatten(), o.flatten(), dim=0) > 0.95


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match='dtype must be one of'):
        _teacher(dtype='int8')
    with pytest.raises(ValueError, match='positive multiple of 32'):
        _teacher(image_size=100)
    with pytest.raises(ValueError, match='overrides must be a list of hydra override strings'):
        _teacher(overrides='seg.models.teachers.TINY_SAM2_OVERRIDES')
    with pytest.raises(FileNotFoundError, match='sam2.1_hiera_x.yaml.*not a config of the installed sam2'):
        _teacher(config='configs/sam2.1/sam2.1_hiera_x.yaml')
