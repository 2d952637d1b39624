"""Mask-grid resampling: the binary path equals thresholding the float chain."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample

from seg.models.utils import mask_geometry
from seg.models.utils.mask_geometry import image_region, resample_matrix, to_output_masks, to_output_res


def _sample(img_hw, ori_hw) -> DetDataSample:
    return DetDataSample(metainfo=dict(img_shape=img_hw, ori_shape=ori_hw))


def _logits(n: int, h: int, w: int) -> torch.Tensor:
    """Blobs of different sizes (long boundaries), a thin stripe, and noise (boundaries everywhere)."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing='ij')
    maps = [0.5 - (yy ** 2 + xx ** 2).sqrt(), 0.2 - ((yy - 0.4) ** 2 + (xx + 0.5) ** 2).sqrt(),
            0.05 - (xx - 0.1).abs(), torch.randn(h, w, generator=g)]
    return torch.stack([maps[k % len(maps)] * (1 + k) for k in range(n)])


@pytest.mark.parametrize('grid,input_hw,img_hw,ori_hw,rescale', [
    ((72, 128), (288, 512), (288, 512), (1080, 1920), True),   # 1080p at 512: no padding
    ((16, 24), (64, 96), (60, 90), (181, 270), True),           # padding + odd sizes
    ((16, 24), (64, 96), (60, 90), (37, 41), True),             # output smaller than the grid
    ((16, 24), (64, 96), (50, 96), None, False),                # img_shape only
    ((16, 24), (64, 96), (50, 90), None, False),                # img_shape only, both cropped
])
@pytest.mark.parametrize('threshold', [0.0, 0.3])
@pytest.mark.parametrize('dense_share', [0.0, 0.25, 2.0])  # every mask dense / as shipped / none
def test_to_output_masks_equals_thresholded_chain(grid, input_hw, img_hw, ori_hw, rescale, threshold,
                                                  dense_share, monkeypatch):
    monkeypatch.setattr(mask_geometry, 'BOUNDARY_SHARE_DENSE', dense_share)
    monkeypatch.setattr(mask_geometry, 'UPSAMPLE_CHUNK_ELEMENTS', 2 ** 16)  # several chunks
    logits = _logits(5, *grid)
    sample = _sample(img_hw, ori_hw or img_hw)
    ref = to_output_res(logits, sample, input_hw, rescale)
    got = to_output_masks(logits, sample, input_hw, rescale, threshold)
    assert got.dtype == torch.bool and got.shape == ref.shape
    # equal except where the float value is within rounding of the threshold
    differ = got != (ref > threshold)
    assert (ref[differ] - threshold).abs().max().item() < 1e-5 if differ.any() else True
    assert differ.sum() <= 2
    assert got.any() and not got.all()


def test_to_output_masks_no_masks_and_constant_masks():
    sample = _sample((60, 90), (120, 180))
    assert to_output_masks(torch.zeros(0, 16, 24), sample, (64, 96), True).shape == (0, 120, 180)
    const = torch.stack([torch.full((16, 24), 2.0), torch.full((16, 24), -2.0)])
    out = to_output_masks(const, sample, (64, 96), True)
    assert out[0].all() and not out[1].any()


def test_resample_matrix_is_the_chain_on_one_axis():
    m = resample_matrix(16, 64, 60, 181)
    assert m.shape == (181, 16)
    assert torch.allclose(m.sum(1), torch.ones(181)) and (m >= 0).all()  # convex weights
    x = torch.randn(16)
    chain = F.interpolate(x[None, None, :, None], size=(64, 1), mode='bilinear', align_corners=False)
    chain = F.interpolate(chain[:, :, :60], size=(181, 1), mode='bilinear', align_corners=False)
    assert torch.allclose(m @ x, chain.flatten(), atol=1e-6)


def test_image_region_excludes_padding_cells():
    region = image_region(_sample((60, 90), (60, 90)), (64, 96), (16, 24), torch.device('cpu'))
    # cell centres: rows (i + 0.5) * 4 < 60 -> 15 rows; cols (j + 0.5) * 4 < 90 -> 22 cols
    assert region.sum(0).max() == 15 and region.sum(1).max() == 22 and region.sum() == 15 * 22
