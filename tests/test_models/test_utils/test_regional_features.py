import pytest
import torch
from torch import nn

from seg.models.utils import RegionalFeatures, RegionState


class _CountingEncoder(nn.Module):
    """Stride-4 conv encoder (receptive field 3 + 3 * 4 = 15 px) that records its input sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 4, stride=4), nn.Conv2d(6, 6, 3, padding=1),
                                  nn.Conv2d(6, 5, 3, padding=1))
        self.sizes = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape[-2:]))
        return self.body(x)


def _blob(h: int = 64, w: int = 96, box=(40, 20, 52, 30)) -> torch.Tensor:
    """Mask logits on the stride-4 grid of an (4h x 4w) frame, foreground in grid ``box``."""
    masks = torch.full((2, h, w), -5.0)
    x0, y0, x1, y1 = box
    masks[1, y0:y1, x0:x1] = 5.0
    return masks


def test_crop_box_grows_the_masks_union_and_aligns_it():
    rf = RegionalFeatures(margin=0.5, halo=16, align=32)
    box = rf.crop_box(_blob(), (256, 384))
    # the blob spans x 160..208, y 80..120 px; + half its size + 16 px, aligned outwards to 32
    assert box == (96, 32, 256, 160)
    assert all(v % 32 == 0 for v in box)
    assert rf.crop_box(torch.full((1, 64, 96), -1.0), (256, 384)) is None  # nothing tracked
    assert rf.crop_box(torch.ones(1, 64, 96), (256, 384)) is None  # above max_area
    with pytest.raises(ValueError, match=r'masks must be \[K, h, w\]'):
        rf.crop_box(torch.ones(64, 96), (256, 384))


def test_regional_features_compute_only_the_crop_and_match_the_full_map_where_pasted():
    torch.manual_seed(0)
    enc = _CountingEncoder().eval()
    rf = RegionalFeatures(margin=0.5, halo=32, refresh_period=3, align=32)
    first, second = torch.randn(1, 3, 256, 384), torch.randn(1, 3, 256, 384)
    with torch.no_grad():
        feat0, state = rf(enc, first, None, None)
        assert isinstance(state, RegionState) and state.age == 0 and state.last_fraction == 1.0
        feat1, state1 = rf(enc, second, state, _blob())
        full1 = enc(second)
    # the blob spans x 160..208, y 80..120 px; + half its size + 32 px, aligned to 32:
    # crop (96, 0, 288, 192), and the encoder saw the crop only
    assert enc.sizes[:2] == [(256, 384), (192, 192)]
    assert state1.age == 1 and state1.last_fraction == pytest.approx(192 * 192 / (256 * 384))
    # pasted: the crop minus the 32 px halo (none on the image border side y = 0):
    # x 128..256, y 0..160 px
    paste = (slice(None), slice(None), slice(0, 40), slice(32, 64))
    torch.testing.assert_close(feat1[paste], full1[paste], atol=1e-5, rtol=1e-5)
    # everywhere else the map is the previous full computation (the global view)
    outside = torch.ones_like(feat1, dtype=torch.bool)
    outside[paste] = False
    assert torch.equal(feat1[outside], feat0[outside])
    assert not torch.equal(feat0, feat1)
    with torch.no_grad():
        _, state2 = rf(enc, second, state1, _blob())
        _, state3 = rf(enc, second, state2, _blob())  # third tracked frame: a full refresh
    assert state2.age == 2 and enc.sizes[-2] == (192, 192)
    assert state3.age == 0 and enc.sizes[-1] == (256, 384)


def test_full_computation_on_new_prompts_new_sizes_and_empty_masks():
    enc = _CountingEncoder().eval()
    rf = RegionalFeatures(halo=32)
    frame = torch.randn(1, 3, 256, 384)
    with torch.no_grad():
        _, state = rf(enc, frame, None, None)
        _, s1 = rf(enc, frame, state, None)  # a prompted frame
        _, s2 = rf(enc, torch.randn(1, 3, 128, 192), state, _blob(32, 48, (4, 4, 8, 8)))
        _, s3 = rf(enc, frame, state, torch.full((1, 64, 96), -1.0))
    assert s1.age == s2.age == s3.age == 0
    assert enc.sizes == [(256, 384), (256, 384), (128, 192), (256, 384)]


def test_crop_at_the_image_border_is_pasted_up_to_the_border():
    torch.manual_seed(0)
    enc = _CountingEncoder().eval()
    rf = RegionalFeatures(margin=0.0, halo=32, align=32)
    frame = torch.randn(1, 3, 256, 384)
    with torch.no_grad():
        _, state = rf(enc, torch.zeros_like(frame), None, None)
        feat, new = rf(enc, frame, state, _blob(box=(0, 0, 8, 8)))
        full = enc(frame)
    assert enc.sizes[-2] == (64, 64)  # x, y 0..32 px + 32 px halo, aligned
    # the border sides are pasted from 0 (a full computation sees the same zero padding there)
    torch.testing.assert_close(feat[..., :8, :8], full[..., :8, :8], atol=1e-5, rtol=1e-5)


def test_bad_arguments_are_named():
    for kwargs, msg in ((dict(margin=-1), 'margin and halo'), (dict(refresh_period=0), 'refresh_period'),
                        (dict(max_area=0), 'max_area'), (dict(align=0), 'align')):
        with pytest.raises(ValueError, match=msg):
            RegionalFeatures(**kwargs)
    rf = RegionalFeatures()
    with pytest.raises(ValueError, match='one frame'):
        rf(nn.Identity(), torch.zeros(2, 3, 64, 64), None, None)
    with pytest.raises(ValueError, match='multiple of align=32'):
        rf(nn.Identity(), torch.zeros(1, 3, 60, 64), None, None)


def test_the_tiny_fastsam2_streams_tracked_frames_through_a_crop():
    from seg.registry import MODELS
    from seg.structures import build_prompts
    from tests.test_models.tiny_cases.detectors import fastsam2_model_cfg
    model = MODELS.build(fastsam2_model_cfg()).eval()
    assert isinstance(model.regional_features, RegionalFeatures)
    sizes = []
    hook = model.backbone.register_forward_pre_hook(lambda m, args: sizes.append(
        tuple(args[0].shape[-2:])))
    frame = torch.randint(0, 256, (3, 256, 384), dtype=torch.uint8)
    mask = torch.zeros(1, 256, 384)
    mask[0, 100:130, 200:230] = 1  # a small object: its crop is far below max_area
    tracker = model.new_tracker()
    states = []
    try:
        with torch.no_grad():
            for step in range(2):
                inputs, sample = model.preprocess_frame(frame)
                if step == 0:
                    sample.prompts = build_prompts(masks=mask)
                out = model.track_step(tracker, inputs, sample, step)
                assert out.masks.shape == (1, 256, 384)  # the whole frame, whatever was encoded
                states.append(tracker.region_state)
    finally:
        hook.remove()
    # the prompted frame in full, then the tracked frame around the remembered prompt mask
    assert sizes[0] == (256, 384) and states[0].age == 0
    assert sizes[1][0] * sizes[1][1] < 0.6 * 256 * 384
    assert states[1].age == 1 and states[1].last_fraction < 0.6
