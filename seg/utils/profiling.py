"""Measurement helpers shared by the benchmarks (printed numbers, never asserted in tests)."""
import statistics
import time
from typing import Callable, List, Optional

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def gflops(fn: Callable[[], object]) -> float:
    """GFLOPs of one call of ``fn`` as torch's FlopCounterMode counts them."""
    counter = FlopCounterMode(display=False)
    # the math attention kernel runs as matmuls the counter sees; fused CPU kernels go uncounted
    with sdpa_kernel(SDPBackend.MATH), counter:
        fn()
    return counter.get_total_flops() / 1e9


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``repeats`` calls after ``warmup`` untimed ones (allocations, lazy init)."""
    for _ in range(warmup):
        fn()
    times: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def prepare_benchmark(threads: Optional[int] = None, seed: int = 0,
                      flop_countable_attention: bool = True) -> None:
    """Common benchmark setup: CPU thread count, reproducible inputs, and (unless a latency-only
    benchmark turns it off) attention run through ops FlopCounterMode can see (the fused fast path
    of nn.MultiheadAttention is invisible to it)."""
    if threads:
        torch.set_num_threads(threads)
    if flop_countable_attention:
        torch.backends.mha.set_fastpath_enabled(False)
    torch.manual_seed(seed)
