"""The decoder's passes over a whole feature map: masks from per-query kernels and features
pooled under per-query masks.

On a CPU, a product of a few queries with a ``C x h*w`` feature is a matrix-vector product that
BLAS runs on one thread (~0.3 ms for 256 x 72 x 128, whatever the thread count). Cut into one
pixel range per thread and run as the batch of one ``bmm``, the ranges run in parallel: 1.4-1.7x
on 2 cores for 1-8 queries, 1.0-1.4x for 16-100 (NOTES.md section 16). The masks are the same
values; a pooled feature sums its ranges' partial sums (float rounding only)."""
import torch


def _pixel_parts(feat: torch.Tensor, batch: int, pixels: int) -> int:
    """Pixel ranges to run as separate ``bmm`` batch entries: one per CPU thread for a single
    sample (a batch already runs in parallel; GPU kernels use the whole device anyway). None in
    an exported graph: it must not depend on the exporting machine's threads or pixel count."""
    if feat.device.type != 'cpu' or batch != 1 or torch.jit.is_tracing() \
            or torch.onnx.is_in_onnx_export():
        return 1
    parts = torch.get_num_threads()
    while parts > 1 and pixels % parts:
        parts -= 1
    return parts


def kernel_masks(kernels: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
    """``einsum('bqc,bcthw->bqthw')``: mask logits ``[B, Q, T, h, w]`` of kernels ``[B, Q, C]``
    on features ``[B, C, T, h, w]``."""
    b, q, c = kernels.shape
    t, h, w = feat.shape[2:]
    n = t * h * w
    flat = feat.reshape(b, c, n)
    parts = _pixel_parts(feat, b, n)
    if parts == 1:
        return torch.bmm(kernels, flat).view(b, q, t, h, w)
    ranges = flat[0].view(c, parts, n // parts).transpose(0, 1)  # [P, C, n / P], a view
    out = torch.bmm(kernels.expand(parts, q, c), ranges)  # [P, Q, n / P]
    return out.transpose(0, 1).reshape(1, q, t, h, w)


def masked_pool(weights: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
    """``einsum('bqthw,bcthw->bqc')``: features ``[B, C, T, h, w]`` summed under per-query
    weights ``[B, Q, T, h, w]`` -> ``[B, Q, C]``."""
    b, q = weights.shape[:2]
    c = feat.shape[1]
    n = weights[0, 0].numel()
    flat_w, flat_f = weights.reshape(b, q, n), feat.reshape(b, c, n)
    parts = _pixel_parts(feat, b, n)
    if parts == 1:
        return torch.bmm(flat_w, flat_f.transpose(1, 2))
    w_ranges = flat_w[0].view(q, parts, n // parts).transpose(0, 1)  # [P, Q, n / P]
    f_ranges = flat_f[0].view(c, parts, n // parts).permute(1, 2, 0)  # [P, n / P, C]
    return torch.bmm(w_ranges, f_ranges).sum(0, keepdim=True)
