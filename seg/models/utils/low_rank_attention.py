"""Low-rank multi-head attention (Linformer / Nystrom), a drop-in for batch-first
``nn.MultiheadAttention``."""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg.registry import MODELS

METHODS = ('linformer', 'nystrom')


@MODELS.register_module()
class LowRankMHSA(nn.Module):
    """Multi-head attention whose cost is linear in the key length.

    ``forward(query, key, value, key_padding_mask=None)`` takes the same batch-first tensors as
    ``nn.MultiheadAttention(batch_first=True)`` and returns what its ``[0]`` would be, and the input
    and output projections carry the same parameter names (``in_proj_weight``, ``in_proj_bias``,
    ``out_proj``), so a head can switch between the two by config and load the same checkpoint
    (Linformer adds its sequence projections).

    - ``'linformer'``: keys and values are projected along the sequence to ``rank`` slots by learnable
      ``[rank, max_seq_len]`` matrices (a shorter sequence uses the first columns). They start as
      average pooling over ``rank`` contiguous segments, which is the identity when
      ``rank == max_seq_len``. Padded keys are zeroed before the projection and slots that no
      valid key reaches are masked.
    - ``'nystrom'``: softmax(Q K^T) is approximated by F A^+ B with ``rank`` landmarks (segment means
      of the queries and of the non-padded keys): F = softmax(Q K~^T), A = softmax(Q~ K~^T),
      B = softmax(Q~ K^T), A^+ the pseudo-inverse by ``pinv_iters`` Newton-Schulz iterations. With
      at least as many landmarks as keys the formula is exact attention, which is then computed
      directly. No parameters beyond the projections.

    Args:
        embed_dim: model width E.
        num_heads: attention heads (E must be divisible by it).
        rank: Linformer slots / Nystrom landmarks.
        method: ``'linformer'`` or ``'nystrom'``.
        max_seq_len: Linformer only (required): the longest key sequence.
        pinv_iters: Nystrom only: Newton-Schulz iterations for A^+ (6 as in Nystromformer).
        bias: learn biases in the input/output projections, like ``nn.MultiheadAttention``.
    """

    def __init__(self,
                 embed_dim: int,
                 num_heads: int,
                 rank: int,
                 method: str = 'nystrom',
                 max_seq_len: Optional[int] = None,
                 pinv_iters: int = 6,
                 bias: bool = True) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f'LowRankMHSA: method must be one of {METHODS}, got {method!r}')
        if embed_dim % num_heads:
            raise ValueError(f'LowRankMHSA: embed_dim {embed_dim} is not divisible by num_heads '
                             f'{num_heads}')
        if rank < 1 or pinv_iters < 1:
            raise ValueError(f'LowRankMHSA: rank and pinv_iters must be >= 1, got {rank} and '
                             f'{pinv_iters}')
        if method == 'linformer' and (max_seq_len is None or max_seq_len < rank):
            raise ValueError(f'LowRankMHSA: linformer needs max_seq_len >= rank={rank}, got '
                             f'{max_seq_len}')
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.rank = rank
        self.method = method
        self.max_seq_len = max_seq_len
        self.pinv_iters = pinv_iters
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)
        if bias:
            nn.init.zeros_(self.out_proj.bias)
        if method == 'linformer':
            pool = self._segment_pooling(rank, max_seq_len)
            self.key_seq_proj = nn.Parameter(pool.clone())
            self.value_seq_proj = nn.Parameter(pool.clone())

    @staticmethod
    def _segment_pooling(rank: int, length: int) -> Tensor:
        """[rank, length] matrix averaging ``length`` tokens over ``rank`` contiguous segments."""
        return F.adaptive_avg_pool1d(torch.eye(length)[None], rank)[0].T.contiguous()

    def forward(self,
                query: Tensor,
                key: Tensor,
                value: Tensor,
                key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """query [B, Lq, E], key/value [B, Lk, E], key_padding_mask [B, Lk] (True = padding)
        -> [B, Lq, E]."""
        self._check_inputs(query, key, value, key_padding_mask)
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = (self.in_proj_bias.chunk(3) if self.in_proj_bias is not None
                         else (None, None, None))
        q = self._heads(F.linear(query, w_q, b_q))  # [B, h, Lq, d]
        k = self._heads(F.linear(key, w_k, b_k))
        v = self._heads(F.linear(value, w_v, b_v))
        valid = None if key_padding_mask is None else ~key_padding_mask[:, None, :, None]
        if self.method == 'linformer':
            out = self._linformer(q, k, v, valid)
        else:
            out = self._nystrom(q, k, v, valid)
        out = out.transpose(1, 2).reshape(query.shape[0], query.shape[1], self.embed_dim)
        return self.out_proj(out)

    def _heads(self, x: Tensor) -> Tensor:
        return x.view(x.shape[0], x.shape[1], self.num_heads, -1).transpose(1, 2)

    def _linformer(self, q: Tensor, k: Tensor, v: Tensor, valid: Optional[Tensor]) -> Tensor:
        length = k.shape[2]
        e_k, e_v = self.key_seq_proj[:, :length], self.value_seq_proj[:, :length]
        if valid is not None:
            k, v = k * valid, v * valid
        logits = q @ (e_k @ k).transpose(-2, -1) / math.sqrt(q.shape[-1])  # [B, h, Lq, r]
        # a slot is empty when no valid key has a non-zero weight in it
        weight = e_k.abs() @ (valid.to(q.dtype) if valid is not None
                              else q.new_ones(k.shape[0], 1, length, 1))
        logits = logits.masked_fill((weight == 0).transpose(-2, -1), float('-inf'))
        return logits.softmax(-1) @ (e_v @ v)

    def _nystrom(self, q: Tensor, k: Tensor, v: Tensor, valid: Optional[Tensor]) -> Tensor:
        scale = 1 / math.sqrt(q.shape[-1])
        key_mask = None if valid is None else ~valid
        if k.shape[2] <= self.rank:
            # every key is its own landmark: F A^+ B collapses to exact attention, computed directly
            return self._masked_softmax(q @ k.transpose(-2, -1) * scale, key_mask) @ v
        q_land, _ = self._landmarks(q, None)
        k_land, k_land_empty = self._landmarks(k, valid)  # padded keys excluded from the means
        f = self._masked_softmax(q @ k_land.transpose(-2, -1) * scale, k_land_empty)
        a = self._masked_softmax(q_land @ k_land.transpose(-2, -1) * scale, k_land_empty)
        b = self._masked_softmax(q_land @ k.transpose(-2, -1) * scale, key_mask)
        return f @ (self.iterative_pinv(a, self.pinv_iters) @ (b @ v))

    @staticmethod
    def iterative_pinv(a: Tensor, iters: int) -> Tensor:
        """Moore-Penrose pseudo-inverse of [..., m, n] (-> [..., n, m]) by Newton-Schulz iterations.

        Matmuls only (fast on GPU, exportable, smooth gradients). A few iterations recover the large
        singular directions only, a built-in regularisation: an exact ``torch.linalg.pinv`` of the
        often badly conditioned softmax matrix amplifies noise and makes the approximation worse.
        """
        eye = torch.eye(a.shape[-2], dtype=a.dtype, device=a.device)
        # Z0 = A^T / (||A||_1 ||A||_inf) makes the iteration converge (Ben-Israel & Cohen)
        norm = a.abs().sum(-2).amax(-1) * a.abs().sum(-1).amax(-1)
        z = a.transpose(-2, -1) / norm[..., None, None]
        for _ in range(iters):
            az = a @ z
            z = 0.25 * z @ (13 * eye - az @ (15 * eye - az @ (7 * eye - az)))
        return z

    def _landmarks(self, x: Tensor, valid: Optional[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        """[B, h, L, d] -> segment means [B, h, m, d] (m = min(rank, L)) and, with ``valid``, which
        landmarks are empty ([B, h, m, 1], their segment holds only padding; their mean is 0)."""
        b, h, length, d = x.shape
        m = min(self.rank, length)
        flat = x.reshape(b * h, length, d).transpose(1, 2)
        if valid is None:
            return F.adaptive_avg_pool1d(flat, m).transpose(1, 2).reshape(b, h, m, d), None
        w = valid.to(x.dtype).expand(b, h, length, 1).reshape(b * h, length, 1).transpose(1, 2)
        sums = F.adaptive_avg_pool1d(flat * w, m)
        counts = F.adaptive_avg_pool1d(w, m)
        means = sums / counts.clamp_min(torch.finfo(x.dtype).tiny)
        return (means.transpose(1, 2).reshape(b, h, m, d),
                (counts == 0).transpose(1, 2).reshape(b, h, m, 1))

    @staticmethod
    def _masked_softmax(logits: Tensor, masked_keys: Optional[Tensor]) -> Tensor:
        """Softmax over the last dim with masked keys ([B, h|1, Lk, 1] bool) set to -inf."""
        if masked_keys is None:
            return logits.softmax(-1)
        return logits.masked_fill(masked_keys.transpose(-2, -1), float('-inf')).softmax(-1)

    def _check_inputs(self, query: Tensor, key: Tensor, value: Tensor,
                      key_padding_mask: Optional[Tensor]) -> None:
        e = self.embed_dim
        if query.dim() != 3 or query.shape[-1] != e:
            raise ValueError(f'LowRankMHSA: query must be [B, Lq, {e}] (batch first), got '
                             f'{tuple(query.shape)}')
        if key.dim() != 3 or key.shape[-1] != e or key.shape != value.shape or \
                key.shape[0] != query.shape[0]:
            raise ValueError(f'LowRankMHSA: key and value must both be [{query.shape[0]}, Lk, {e}], '
                             f'got {tuple(key.shape)} and {tuple(value.shape)}')
        if self.method == 'linformer' and key.shape[1] > self.max_seq_len:
            raise ValueError(f'LowRankMHSA: {key.shape[1]} keys exceed linformer max_seq_len='
                             f'{self.max_seq_len}')
        if key_padding_mask is not None:
            if key_padding_mask.shape != key.shape[:2] or key_padding_mask.dtype != torch.bool:
                raise ValueError(f'LowRankMHSA: key_padding_mask must be bool {tuple(key.shape[:2])}, '
                                 f'got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}')
            if key_padding_mask.all(dim=1).any():
                raise ValueError('LowRankMHSA: key_padding_mask masks every key of a sample')
