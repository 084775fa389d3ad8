"""Latency of a module on a torch device, with ``torch.utils.benchmark``.

One function shared by every latency measurement in the package (the ``Latency`` objective, the
latency tables, InstaNAS's option tables), so they all time the same way: eval mode, no autograd,
a fixed thread count, warm-up runs, then the median of timed blocks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils import benchmark


def measure_latency(
    fn: Callable[[torch.Tensor], object],
    example_input: torch.Tensor,
    *,
    threads: int = 1,
    warmup: int = 3,
    min_run_time: float = 0.05,
) -> float:
    """Median seconds per call of ``fn(example_input)``.

    Args:
        fn:
            A module (put in eval mode by the caller) or any callable of one tensor.
        example_input:
            The input, already on the device to time on.
        threads:
            Intra-op threads for the measurement (``torch.utils.benchmark`` restores the
            previous setting afterwards). Default 1.
        warmup:
            Untimed calls first (allocator, lazy initialisation, caches). Default 3.
        min_run_time:
            Seconds of timed calls at least; ``blocked_autorange`` chooses the block size and
            reports the median over blocks. Default 0.05.
    """
    if threads < 1:
        raise ValueError(f"Got threads={threads!r}, but expected a positive integer.")
    if warmup < 0:
        raise ValueError(f"Got warmup={warmup!r}, but expected a non-negative integer.")
    if min_run_time <= 0:
        raise ValueError(f"Got min_run_time={min_run_time!r}, but expected a positive number.")
    with torch.inference_mode():
        for _ in range(warmup):
            fn(example_input)
        timer = benchmark.Timer(
            stmt="fn(x)", globals={"fn": fn, "x": example_input}, num_threads=threads
        )
        measurement = timer.blocked_autorange(min_run_time=min_run_time)
    return float(measurement.median)
