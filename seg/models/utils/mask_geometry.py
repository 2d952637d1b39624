"""Where a mask grid lies on the image: resampling grid logits to the image (as logits, or as
binary masks at one byte per output pixel), and the grid cells inside the image (not in the batch
padding)."""
from functools import lru_cache
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample


def to_output_res(logits: torch.Tensor, sample: DetDataSample, input_hw: Tuple[int, int],
                  rescale: bool) -> torch.Tensor:
    """Mask logits ``[N, h, w]`` on the grid over the padded input ``input_hw`` -> the image
    without padding (``img_shape``), or its original size (``ori_shape``) when ``rescale``."""
    up = F.interpolate(logits[None], size=input_hw, mode='bilinear', align_corners=False)
    h, w = sample.img_shape[:2]
    up = up[..., :h, :w]
    if rescale:
        up = F.interpolate(up, size=tuple(sample.ori_shape[:2]), mode='bilinear', align_corners=False)
    return up[0]


# float elements resampled at once (256 MB): a 1080p batch of masks goes in one call, an
# 8000 x 6000 image one mask at a time
UPSAMPLE_CHUNK_ELEMENTS = 64 * 2 ** 20
# ``to_output_masks`` interpolates boundary pixels at ~20 bytes of index and value each; above
# this share of the output they are (a noisy mask), resampling every pixel is cheaper
BOUNDARY_SHARE_DENSE = 0.25


@lru_cache(maxsize=64)
def resample_matrix(grid: int, padded: int, valid: int, out: Optional[int],
                    device: torch.device = torch.device('cpu')) -> torch.Tensor:
    """``[out, grid]``: the linear map ``to_output_res`` applies along one axis (bilinear from the
    grid to the padded input, crop to the ``valid`` image part, bilinear to ``out``; ``out=None``:
    no second resize). Bilinear resampling is separable, so the 2-D chain is ``Mh @ X @ Mw.T``;
    the rows are found by sending each grid cell's unit impulse through the same interpolations."""
    impulses = torch.eye(grid, device=device)[None, :, :, None]  # channel k: cell k set
    m = F.interpolate(impulses, size=(padded, 1), mode='bilinear', align_corners=False)[:, :, :valid]
    if out is not None:
        m = F.interpolate(m, size=(out, 1), mode='bilinear', align_corners=False)
    return m[0, :, :, 0].T.contiguous()


def to_output_masks(logits: torch.Tensor, sample: DetDataSample, input_hw: Tuple[int, int],
                    rescale: bool, threshold: float = 0.0) -> torch.Tensor:
    """bool ``[N, H, W]``: ``to_output_res(logits, ...) > threshold`` without the float image.

    An output pixel's value is a convex combination (non-negative weights summing to one) of the
    grid cells in its support, so where every cell of the support lies on one side of the
    threshold the pixel does too: those pixels are copied from the grid (a gather, one byte per
    output pixel). Only the pixels whose support is mixed, a band along the mask boundaries, are
    interpolated, from their few cells, ``UPSAMPLE_CHUNK_ELEMENTS`` / 16 at a time. Masks that
    are mostly boundary (above ``BOUNDARY_SHARE_DENSE`` of the output: noise) are resampled in
    full instead (``_dense_masks``). Equal to thresholding ``to_output_res`` except where the
    value lies within float rounding (~1e-6) of the threshold."""
    n, h, w = logits.shape
    img_h, img_w = sample.img_shape[:2]
    out_h, out_w = sample.ori_shape[:2] if rescale else (img_h, img_w)
    dev = logits.device
    rows_plan = _axis_plan(h, input_hw[0], img_h, out_h if rescale else None, dev)
    cols_plan = _axis_plan(w, input_hw[1], img_w, out_w if rescale else None, dev)
    (r_counts, kh, r_first, r_pieces, rows, wr, r_runs, _) = rows_plan
    (c_counts, kw, c_first, c_pieces, cols, wc, c_runs, _) = cols_plan
    if n == 0:
        return torch.zeros((0, out_h, out_w), dtype=torch.bool, device=dev)
    # pad so every window [i, i + k) of the grid exists; padded cells carry zero weight
    x = F.pad(logits.float()[:, None], (0, kw - 1, 0, kh - 1), mode='replicate')[:, 0]
    # the share of each window's cells above the threshold: 1 all, 0 none (one pooling pass;
    # a sum of at most kh * kw ones is exact, so the comparisons are too)
    share = F.avg_pool2d((x > threshold).float()[:, None], (kh, kw), stride=1)[:, 0]
    all_above = share > 1 - 0.5 / (kh * kw)
    # windows no output starts in (grid cells in the padding) need no interpolation
    mixed = ((share > 0) & ~all_above & (r_counts > 0)[:, None] & (c_counts > 0)[None])
    per_piece = rows.shape[1] * cols.shape[1]  # outputs interpolated per (row, column) piece
    pieces = (r_pieces[:, None] * c_pieces[None]).to(torch.float32)
    work = (mixed.to(torch.float32) * pieces).flatten(1).sum(1) * per_piece
    is_dense = work > BOUNDARY_SHARE_DENSE * out_h * out_w
    dense, sparse = is_dense.nonzero()[:, 0], (~is_dense).nonzero()[:, 0]
    if len(sparse) == 0:  # no mask is worth the gather: no copy of the grid signs either
        return _dense_masks(logits, sample, input_hw, rescale, threshold)
    # outputs starting in window i are consecutive: expand each window to them (columns first,
    # on the few grid rows; the rows are then whole-row copies)
    out = _repeat_windows(_repeat_windows(all_above[sparse], 2, c_runs), 1, r_runs)
    if len(dense):
        full = out.new_empty((n, out_h, out_w))
        full[sparse] = out
        full[dense] = _dense_masks(logits[dense], sample, input_hw, rescale, threshold)
        out = full
    b, i, j = mixed[sparse].nonzero(as_tuple=True)
    b = sparse[b]
    # every mixed window -> its (row piece, column piece) pairs
    e, pi = _window_pieces(i, r_first, r_pieces)
    b, i, j = b[e], i[e], j[e]
    e, pj = _window_pieces(j, c_first, c_pieces)
    b, i, j, pi = b[e], i[e], j[e], pi[e]
    windows = x.unfold(1, kh, 1).unfold(2, kw, 1)  # [N, h, w, kh, kw], a view
    chunk = max(1, UPSAMPLE_CHUNK_ELEMENTS // 16 // per_piece)
    for s in range(0, len(b), chunk):
        bs, is_, js, ps, qs = b[s:s + chunk], i[s:s + chunk], j[s:s + chunk], pi[s:s + chunk], \
            pj[s:s + chunk]
        vals = wr[ps] @ windows[bs, is_, js] @ wc[qs].transpose(1, 2) > threshold  # [M, Lh, Lw]
        flat = (bs[:, None, None] * out_h + rows[ps][:, :, None]) * out_w + cols[qs][:, None, :]
        # through uint8 views: scatter_ of bool is 2x slower on a CPU, the bytes are the same
        out.view(torch.uint8).view(-1).scatter_(0, flat.flatten(), vals.flatten().view(torch.uint8))
    return out


def _repeat_windows(x: torch.Tensor, dim: int, runs: Tuple[Tuple[int, int, int], ...]
                    ) -> torch.Tensor:
    """``x.repeat_interleave(counts, dim)`` with the counts given as runs ``(first window, end,
    count)`` of equal counts (``_axis_plan``): one broadcast copy per run (the counts differ only
    at the image edges) instead of a gather per output element (1.4x faster on this CPU)."""
    shape = list(x.shape)
    shape[dim] = sum((end - first) * count for first, end, count in runs)
    out = x.new_empty(shape)
    start = 0
    for first, end, count in runs:
        src = x.narrow(dim, first, end - first).unsqueeze(dim + 1)
        dst = out.narrow(dim, start, (end - first) * count)
        dst.view(*src.shape[:dim + 1], count, *src.shape[dim + 2:]).copy_(
            src.expand(*src.shape[:dim + 1], count, *src.shape[dim + 2:]))
        start += (end - first) * count
    return out


def _window_pieces(window: torch.Tensor, first: torch.Tensor, pieces: torch.Tensor
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Window indices ``[M]`` -> for each of their pieces (``_axis_plan``), the entry of
    ``window`` it belongs to and its piece index."""
    reps = pieces[window]
    entry = torch.repeat_interleave(torch.arange(len(window), device=window.device), reps)
    within = torch.arange(len(entry), device=window.device) - (torch.cumsum(reps, 0) - reps)[entry]
    return entry, first[window[entry]] + within


def _dense_masks(logits: torch.Tensor, sample: DetDataSample, input_hw: Tuple[int, int],
                 rescale: bool, threshold: float) -> torch.Tensor:
    """``to_output_res(logits, ...) > threshold`` for masks that are mostly boundary, where
    resampling every pixel is cheaper than the band. Separably, as the chain is: the columns by
    the chain's own 1-D interpolations on the grid rows, then each row piece (``_axis_plan``) as
    the product of its weights with its window's resampled grid rows, one batched product per
    mask (2x faster on a CPU than interpolating the whole image in 2-D; the same weights)."""
    n, h, w = logits.shape
    img_h, img_w = sample.img_shape[:2]
    out_h, out_w = sample.ori_shape[:2] if rescale else (img_h, img_w)
    dev = logits.device
    _, k, _, _, rows, weights, _, cells = _axis_plan(h, input_hw[0], img_h,
                                                     out_h if rescale else None, dev)
    targets = rows.flatten()
    out = torch.empty((n, out_h, out_w), dtype=torch.bool, device=dev)
    step = max(1, UPSAMPLE_CHUNK_ELEMENTS // ((h + k) * out_w))
    for s in range(0, n, step):
        part = logits[s:s + step].float()
        cols = F.interpolate(part.reshape(1, -1, w), size=input_hw[1], mode='linear',
                             align_corners=False)[..., :img_w]
        if rescale:
            cols = F.interpolate(cols, size=out_w, mode='linear', align_corners=False)
        # zero rows below the grid: the windows of the last cells exist (with zero weight)
        cols = F.pad(cols.reshape(len(part), h, out_w), (0, 0, 0, k - 1))
        for j in range(len(part)):
            vals = torch.bmm(weights, cols[j][cells]) > threshold  # [V, L, out_w]
            # a short piece repeats its last row: the same row written twice, with the same values
            out[s + j][targets] = vals.view(-1, out_w)
    return out


@lru_cache(maxsize=64)
def _axis_plan(grid: int, padded: int, valid: int, out: Optional[int], device: torch.device) -> tuple:
    """For one axis' ``resample_matrix`` ``[out, grid]``: per window start ``i`` the number of
    outputs whose support starts at cell ``i`` (they are consecutive) and the window length ``k``
    covering every output's support. A window's outputs are cut into pieces of L (the most
    common count: the edge windows, where the clamped borders start more outputs, get two
    pieces instead of widening every piece); per window its first piece and number of pieces,
    per piece its outputs (``rows [V, L]``; a short piece repeats its last output, which
    rewrites the same value) and their weights on the window (``[V, L, k]``); and the runs of
    windows with equal, non-zero counts ``(first window, end, count)`` (``_repeat_windows``); and
    per piece its window's cells (``[V, k]``)."""
    m = resample_matrix(grid, padded, valid, out, device)
    nz = m != 0
    first = nz.float().argmax(1)
    last = m.shape[1] - 1 - nz.flip(1).float().argmax(1)
    k = int((last - first).max()) + 1
    counts = torch.bincount(first, minlength=m.shape[1])
    starts = torch.cumsum(counts, 0) - counts  # ``first`` is non-decreasing along the outputs
    length = int(torch.mode(counts[counts > 0]).values)
    pieces = (counts + length - 1) // length
    piece_first = torch.cumsum(pieces, 0) - pieces
    window = torch.repeat_interleave(torch.arange(m.shape[1], device=m.device), pieces)  # [V]
    offset = (torch.arange(len(window), device=m.device) - piece_first[window]) * length
    left = counts[window] - offset  # outputs of the window from this piece on
    span = torch.arange(length, device=m.device)
    rows = starts[window, None] + offset[:, None] + torch.minimum(span, left[:, None] - 1)
    padded_m = F.pad(m, (0, k - 1))
    cells = window[:, None] + torch.arange(k, device=m.device)
    weights = padded_m[rows[:, :, None], cells[:, None, :]]  # [V, L, k]
    runs, first = [], 0
    listed = counts.tolist()
    for i in range(1, len(listed) + 1):
        if i == len(listed) or listed[i] != listed[first]:
            if listed[first]:
                runs.append((first, i, listed[first]))
            first = i
    return counts, k, piece_first, pieces, rows, weights, tuple(runs), cells


def image_region(sample: DetDataSample, input_hw: Tuple[int, int], grid_hw: Tuple[int, int],
                 device: torch.device) -> torch.Tensor:
    """bool ``[h, w]``: the cells of a mask grid over the padded input whose centre lies inside
    the image (``img_shape``), not in the padding."""
    (h, w), (img_h, img_w) = grid_hw, sample.img_shape[:2]
    ys = (torch.arange(h, device=device) + 0.5) * input_hw[0] / h < img_h
    xs = (torch.arange(w, device=device) + 0.5) * input_hw[1] / w < img_w
    return ys[:, None] & xs[None]
