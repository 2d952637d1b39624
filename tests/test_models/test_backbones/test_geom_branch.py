import pytest
import torch
import torch.nn.functional as F

from seg.models.backbones import GeomBranch

SOBEL_X = torch.tensor([[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]]) / 8


def feats(b: int = 2, c4: int = 6, c8: int = 10, size: int = 32) -> list:
    return [torch.randn(b, c4, size // 4, size // 4), torch.randn(b, c8, size // 8, size // 8)]


def test_outputs_at_stride_8_and_16():
    branch = GeomBranch([6, 10], channels=12)
    g8, g16 = branch(feats(size=64))  # stride-4 map 16x16, stride-8 map 8x8
    assert g8.shape == (2, 12, 8, 8) and g16.shape == (2, 12, 4, 4)


def test_only_the_requested_stride_is_built():
    branch = GeomBranch([6, 10], channels=12, out_strides=(8, ))
    assert branch.down16 is None
    (g8, ) = branch(feats())
    assert g8.shape == (2, 12, 4, 4)
    (g16, ) = GeomBranch([6, 10], channels=12, out_strides=(16, ))(feats())
    assert g16.shape == (2, 12, 2, 2)


def test_first_depthwise_filters_start_as_edge_detectors():
    branch = GeomBranch([4, 10], channels=12)
    weight = branch.edge.depthwise_conv.conv.weight
    # channels cycle through Sobel-x, Sobel-y, Laplacian
    assert torch.equal(weight[0, 0], SOBEL_X) and torch.equal(weight[3, 0], SOBEL_X)
    assert torch.equal(weight[1, 0], SOBEL_X.T)
    assert weight[2, 0].sum() == 0 and weight[2, 0, 1, 1] == -0.5
    # the runner's init_weights re-draws ConvModules (kaiming); the edge filters survive it
    branch.init_weights()
    assert torch.equal(branch.edge.depthwise_conv.conv.weight[0, 0], SOBEL_X)
    plain = GeomBranch([4, 10], edge_init=False)
    assert not torch.equal(plain.edge.depthwise_conv.conv.weight[0, 0], SOBEL_X)

    # a vertical step edge: the Sobel-x response (stride 2, padding 1) is zero away from the step
    step = torch.zeros(1, 4, 16, 16)
    step[..., 8:] = 1.0
    resp = F.conv2d(step, weight.detach(), stride=2, padding=1, groups=4)[0, 0]
    assert (resp[1:-1, 4] > 0).all()  # output column 4 samples input columns 7..9
    assert (resp[:, :3] == 0).all() and (resp[:, 5:7] == 0).all()


def test_bad_inputs_fail_clearly():
    branch = GeomBranch([6, 10], channels=12)
    with pytest.raises(ValueError, match='stride-4 map must be'):
        branch([torch.randn(1, 5, 8, 8), torch.randn(1, 10, 4, 4)])
    with pytest.raises(ValueError, match='not half'):
        branch([torch.randn(1, 6, 8, 8), torch.randn(1, 10, 8, 8)])
    with pytest.raises(ValueError, match='2 maps|got 1 maps'):
        branch([torch.randn(1, 6, 8, 8)])
    with pytest.raises(ValueError, match='out_strides'):
        GeomBranch([6, 10], out_strides=(32, ))
    with pytest.raises(ValueError, match='in_channels'):
        GeomBranch([6, 10, 12])
