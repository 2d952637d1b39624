"""Dynamic token pruning: run an expensive step on the most informative tokens only.

``TokenPruner`` scores the tokens of a ``[B, N, C]`` sequence, hands the top ``ceil(keep_ratio * N)``
of them to a caller-supplied ``process`` function and scatters the results back into the full
sequence; pruned tokens pass through unchanged, so dense outputs keep their shape.
"""
import math
from typing import Callable, Optional, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from seg.registry import MODELS

SCORES = ('entropy', 'saliency')


@MODELS.register_module()
class TokenPruner(nn.Module):
    """Keep the top-scoring tokens for ``process``; pass the others through unchanged.

    Scores (higher = more likely kept):

    - ``'saliency'``: a small learnable MLP on the normalised token.
    - ``'entropy'``: a learnable single-layer self-attention over the tokens; the score is the
      negative entropy of each token's attention distribution (averaged over heads). Tokens of
      homogeneous background attend broadly (high entropy) while tokens on objects and contours
      attend to a few related tokens (low entropy), so low entropy means informative.

    Gradient to the scorer: the kept outputs are ``p + (s - s.detach()) * (p - x).detach()`` with
    ``p = process(x)`` and ``s`` the kept scores. The added term is exactly zero in the forward pass
    (so ``keep_ratio=1`` equals plain ``process`` bit for bit) but sends each kept score the gradient
    of "how much processing this token helped the loss", a straight-through signal for the
    otherwise non-differentiable top-k.

    Video mode (``forward(..., video=True)``): the scores of the last scored frame are cached and
    reused for the next ``refresh_period - 1`` frames, skipping the scoring computation; call
    ``reset()`` at the start of every video. Reused scores are constants, so frames that reuse them
    send no gradient to the scorer.

    Args:
        keep_ratio: fraction of tokens processed, in (0, 1]; ``ceil(keep_ratio * N)`` tokens.
        embed_dim: channel count C of the tokens.
        score: ``'entropy'`` or ``'saliency'``.
        refresh_period: in video mode, rescore every this many frames (1 = every frame).
        num_heads: attention heads of the entropy scorer.
        score_dim: width of the scorer (entropy: query/key width; saliency: MLP hidden width);
            defaults to ``embed_dim // 4``.
        num_score_keys: entropy scorer only: attend to at most this many keys (evenly strided) so
            scoring costs O(N * num_score_keys) instead of O(N^2); None = all tokens.

    Attributes set by every forward (for inspection and tests):
        last_keep_idx: LongTensor [B, K], the kept token indices, ascending.
        last_scored: whether the last forward computed scores (False: reused the video cache).
    """

    def __init__(self,
                 keep_ratio: float,
                 embed_dim: int,
                 score: str = 'entropy',
                 refresh_period: int = 4,
                 num_heads: int = 1,
                 score_dim: Optional[int] = None,
                 num_score_keys: Optional[int] = None) -> None:
        super().__init__()
        if not 0.0 < keep_ratio <= 1.0:
            raise ValueError(f'TokenPruner: keep_ratio must be in (0, 1], got {keep_ratio}')
        if score not in SCORES:
            raise ValueError(f'TokenPruner: score must be one of {SCORES}, got {score!r}')
        if refresh_period < 1:
            raise ValueError(f'TokenPruner: refresh_period must be >= 1, got {refresh_period}')
        if num_score_keys is not None and num_score_keys < 1:
            raise ValueError(f'TokenPruner: num_score_keys must be >= 1 or None, got {num_score_keys}')
        score_dim = score_dim or max(embed_dim // 4, num_heads)
        if score == 'entropy' and score_dim % num_heads:
            raise ValueError(f'TokenPruner: score_dim {score_dim} is not divisible by num_heads '
                             f'{num_heads}')
        self.keep_ratio = keep_ratio
        self.embed_dim = embed_dim
        self.score = score
        self.refresh_period = refresh_period
        self.num_heads = num_heads
        self.num_score_keys = num_score_keys

        self.norm = nn.LayerNorm(embed_dim)
        if score == 'entropy':
            self.q_proj = nn.Linear(embed_dim, score_dim)
            self.k_proj = nn.Linear(embed_dim, score_dim)
        else:
            self.mlp = nn.Sequential(
                nn.Linear(embed_dim, score_dim), nn.GELU(), nn.Linear(score_dim, 1))

        self._cached_scores: Optional[Tensor] = None
        self._cache_age = 0
        self.last_keep_idx: Optional[Tensor] = None
        self.last_scored = False

    def num_kept(self, num_tokens: int) -> int:
        """Number of tokens processed out of ``num_tokens``: ``ceil(keep_ratio * N)``, at least 1."""
        # round first so that e.g. 0.7 * 10 = 7.000000000000001 does not become 8; int(): under
        # ONNX tracing the size is a tensor (the exported encoder has a fixed input size)
        return max(1, math.ceil(round(self.keep_ratio * int(num_tokens), 6)))

    def compute_scores(self, tokens: Tensor) -> Tensor:
        """Score every token: [B, N, C] -> [B, N], higher = more informative."""
        self._check_tokens(tokens)
        x = self.norm(tokens)
        if self.score == 'saliency':
            return self.mlp(x).squeeze(-1)
        b, n, _ = x.shape
        keys = x
        if self.num_score_keys is not None and n > self.num_score_keys:
            keys = x[:, ::math.ceil(n / self.num_score_keys)]
        q = self.q_proj(x).view(b, n, self.num_heads, -1).transpose(1, 2)
        k = self.k_proj(keys).view(b, keys.shape[1], self.num_heads, -1).transpose(1, 2)
        log_attn = F.log_softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        entropy = -(log_attn.exp() * log_attn).sum(-1)  # [B, heads, N]
        return -entropy.mean(1)

    def reset(self) -> None:
        """Forget the cached video scores (call at the start of every video)."""
        self._cached_scores = None
        self._cache_age = 0

    @property
    def video_cache(self) -> Tuple[Optional[Tensor], int]:
        """The video mode's cached scores and their age: a video's per-frame state, which a caller
        tracking several videos with one model saves after a frame and restores before its next."""
        return self._cached_scores, self._cache_age

    @video_cache.setter
    def video_cache(self, cache: Tuple[Optional[Tensor], int]) -> None:
        self._cached_scores, self._cache_age = cache

    def forward(self,
                tokens: Tensor,
                process: Callable[..., Tensor],
                video: bool = False,
                aux: Optional[Tensor] = None) -> Tensor:
        """Apply ``process`` to the kept tokens and scatter the results back.

        Args:
            tokens: [B, N, C] token sequence.
            process: maps the kept tokens [B, K, C] to [B, K, C]; called as ``process(kept)``, or
                ``process(kept, aux_kept)`` when ``aux`` is given. It sees the kept tokens in
                ascending index order.
            video: reuse the previous frame's scores (see the class docstring).
            aux: optional [B, N, D] per-token side input (e.g. positional encodings) gathered with
                the kept tokens and passed to ``process``; it is not part of the output.

        Returns:
            [B, N, C]: processed tokens at the kept indices, the input tokens elsewhere.
        """
        self._check_tokens(tokens)
        b, n, c = tokens.shape
        if aux is not None and aux.shape[:2] != (b, n):
            raise ValueError(f'TokenPruner: aux must be [B, N, D] = [{b}, {n}, D] like the tokens, '
                             f'got {tuple(aux.shape)}')
        scores = self._scores_for(tokens, video)
        k = self.num_kept(n)
        keep_idx = scores.topk(k, dim=1).indices.sort(dim=1).values
        self.last_keep_idx = keep_idx

        kept = tokens.gather(1, keep_idx[..., None].expand(-1, -1, c))
        if aux is None:
            processed = process(kept)
        else:
            processed = process(kept, aux.gather(1, keep_idx[..., None].expand(-1, -1, aux.shape[-1])))
        if processed.shape != kept.shape:
            raise ValueError(f'TokenPruner: process must map [B, K, C] = {tuple(kept.shape)} to the '
                             f'same shape, got {tuple(processed.shape)}')
        kept_scores = scores.gather(1, keep_idx)
        straight_through = (kept_scores - kept_scores.detach())[..., None]  # == 0, carries gradient
        processed = processed + straight_through * (processed - kept).detach()
        # under autocast ``process`` may return a lower precision than the tokens it updates
        return tokens.scatter(1, keep_idx[..., None].expand(-1, -1, c), processed.to(tokens.dtype))

    def _scores_for(self, tokens: Tensor, video: bool) -> Tensor:
        """Fresh scores, or the video cache when it is valid for these tokens."""
        cache = self._cached_scores
        reuse = (video and cache is not None and cache.shape == tokens.shape[:2]
                 and cache.device == tokens.device and self._cache_age < self.refresh_period)
        self.last_scored = not reuse
        if reuse:
            self._cache_age += 1
            return cache
        scores = self.compute_scores(tokens)
        if video:
            # a copy: a CUDA-graph replay overwrites its outputs, the cache must outlive the frame
            self._cached_scores = scores.detach().clone()
            self._cache_age = 1
        return scores

    def _check_tokens(self, tokens: Tensor) -> None:
        if tokens.dim() != 3 or tokens.shape[-1] != self.embed_dim:
            raise ValueError(f'TokenPruner: tokens must be [B, N, {self.embed_dim}], got '
                             f'{tuple(tokens.shape)}')
