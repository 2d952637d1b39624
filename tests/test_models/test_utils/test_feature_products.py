"""The decoder's feature passes: the pixel-range split equals the plain products, values and
gradients, for any thread count and pixel count."""
import pytest
import torch

from seg.models.utils.feature_products import _pixel_parts, kernel_masks, masked_pool


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize('num_threads,t,h,w', [(1, 1, 8, 12), (2, 1, 8, 12), (2, 2, 5, 7),
                                               (3, 1, 8, 12)])
@pytest.mark.parametrize('batch,queries', [(1, 1), (1, 5), (2, 3)])
def test_products_equal_the_einsums(threads, num_threads, t, h, w, batch, queries):
    threads(num_threads)
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(batch, 6, t, h, w, generator=g, requires_grad=True)
    kernels = torch.randn(batch, queries, 6, generator=g, requires_grad=True)
    weights = torch.rand(batch, queries, t, h, w, generator=g, requires_grad=True)
    got = (kernel_masks(kernels, feat), masked_pool(weights, feat))
    ref = (torch.einsum('bqc,bcthw->bqthw', kernels, feat),
           torch.einsum('bqthw,bcthw->bqc', weights, feat))
    for a, b in zip(got, ref):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)
    grads = torch.autograd.grad(sum(x.square().sum() for x in got), (feat, kernels, weights))
    ref_grads = torch.autograd.grad(sum(x.square().sum() for x in ref), (feat, kernels, weights))
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-4)


def test_split_only_for_one_cpu_sample_and_into_whole_ranges(threads):
    threads(2)
    feat = torch.zeros(1, 4, 1, 8, 12)
    assert _pixel_parts(feat, 1, 96) == 2
    assert _pixel_parts(feat, 2, 96) == 1  # a batch: bmm already runs its samples in parallel
    assert _pixel_parts(feat, 1, 35) == 1  # odd pixel count: no whole ranges for 2 threads
    threads(3)
    assert _pixel_parts(feat, 1, 35) == 1 and _pixel_parts(feat, 1, 36) == 3
    threads(4)
    assert _pixel_parts(feat, 1, 30) == 3  # the most ranges that divide the pixels


def test_no_split_in_a_traced_graph(threads):
    """An exported graph holds the plain product: the split depends on the exporting machine's
    threads and on the pixel count dividing evenly."""
    threads(2)
    feat, kernels = torch.randn(1, 4, 1, 8, 12), torch.randn(1, 3, 4)
    traced = torch.jit.trace(kernel_masks, (kernels, feat))
    assert 'transpose' not in str(traced.graph) and 'bmm' in str(traced.graph)
    odd = torch.randn(1, 4, 1, 7, 9)  # 63 pixels: no whole 2-thread ranges
    assert torch.allclose(traced(kernels, odd), torch.einsum('bqc,bcthw->bqthw', kernels, odd),
                          atol=1e-6)
