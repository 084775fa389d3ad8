"""Latency of a module on a torch device, with ``torch.utils.benchmark``.

One function shared by every latency measurement in the package (the ``Latency`` objective, the
latency tables, InstaNAS's option tables), so they all time the same way: eval mode, no autograd,
a fixed thread count, warm-up runs, then the median over several timed blocks.

Two clocks. ``"wall"`` is elapsed time, what a user of a dedicated device sees. ``"thread"`` is
the CPU time of the calling thread (``time.thread_time``): for single-threaded CPU inference it
equals the wall-clock latency of an idle core, but it does not count the time the thread waits
while other processes run, so measurements on a shared machine stay comparable. It is wrong for
GPUs (the thread sleeps while the GPU works) and for several intra-op threads (the other
threads' work is not counted); :func:`resolve_clock` refuses those combinations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import statistics
import time

import torch
from torch.utils import benchmark

from optuna_devnas._checks import check_positive_int
from optuna_devnas._device import intra_op_threads

CLOCKS = ("auto", "wall", "thread")
"""Accepted ``clock`` arguments; ``"auto"`` is ``"thread"`` for one CPU thread, else ``"wall"``."""

MIN_BLOCKS = 7
"""Timed blocks per measurement at least; the median over blocks ignores short interruptions."""


def resolve_clock(clock: str, *, device: torch.device | str = "cpu", threads: int = 1) -> str:
    """``"wall"`` or ``"thread"``: the clock to time ``device`` with ``threads`` threads.

    Args:
        clock:
            ``"auto"`` (``"thread"`` on a CPU with one thread, else ``"wall"``), ``"wall"`` or
            ``"thread"``.
        device:
            The torch device that runs the model.
        threads:
            Intra-op threads of the measurement.
    """
    if clock not in CLOCKS:
        raise ValueError(f"Got clock={clock!r}, but expected one of {CLOCKS}.")
    on_cpu = torch.device(device).type == "cpu"
    if clock == "auto":
        return "thread" if on_cpu and threads == 1 else "wall"
    if clock == "thread" and not (on_cpu and threads == 1):
        raise ValueError(
            f"Got clock='thread' with device={str(device)!r} and threads={threads}, but the "
            "thread clock only counts the calling thread's CPU time: use it on a CPU with "
            "threads=1, or use clock='wall'."
        )
    return clock


def _timer_function(clock: str) -> Callable[[], float]:
    if clock == "thread":
        return time.thread_time
    # torch.utils.benchmark's default timer synchronizes CUDA before reading the wall clock.
    return benchmark.utils.timer.timer


def measure_latency(
    fn: Callable[[torch.Tensor], object],
    example_input: torch.Tensor,
    *,
    threads: int = 1,
    warmup: int = 3,
    min_run_time: float = 0.05,
    clock: str = "wall",
) -> float:
    """Median seconds per call of ``fn(example_input)``.

    The calls are timed in blocks of equal size with ``torch.utils.benchmark.Timer``; the block
    size is chosen so that at least :data:`MIN_BLOCKS` blocks fill ``min_run_time``, and the
    median over blocks is returned, so a burst of other work on the machine spoils a few blocks
    but not the result. (``Timer.blocked_autorange`` would often time a single block, whose
    mean is what a burst spoils.)

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
            Seconds of timed calls at least, on ``clock``. Default 0.05.
        clock:
            ``"wall"``, ``"thread"`` or ``"auto"`` (see :func:`resolve_clock`). Default
            ``"wall"``.
    """
    check_positive_int(threads, "threads")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"Got warmup={warmup!r}, but expected a non-negative integer.")
    if not min_run_time > 0:
        raise ValueError(f"Got min_run_time={min_run_time!r}, but expected a positive number.")
    resolved = resolve_clock(clock, device=example_input.device, threads=threads)
    timer = benchmark.Timer(
        stmt="fn(x)",
        globals={"fn": fn, "x": example_input},
        num_threads=threads,
        timer=_timer_function(resolved),
    )
    with intra_op_threads(threads), torch.inference_mode():
        for _ in range(warmup):
            fn(example_input)
        first = _seconds_per_call(timer, 1)
        number = max(1, int(min_run_time / MIN_BLOCKS / max(first, 1e-9)))
        blocks: list[float] = []
        total = 0.0
        while len(blocks) < MIN_BLOCKS or total < min_run_time:
            per_call = _seconds_per_call(timer, number)
            blocks.append(per_call)
            total += per_call * number
    return float(statistics.median(blocks))


def interleaved_medians(
    items: Sequence[tuple[Callable[[torch.Tensor], object], torch.Tensor]],
    *,
    rounds: int,
    threads: int = 1,
    warmup: int = 3,
    min_run_time: float = 0.05,
    clock: str = "wall",
    progress: Callable[[int, int, int], None] | None = None,
) -> list[float]:
    """Each item's median seconds per call over ``rounds`` rounds of :func:`measure_latency`.

    Every round times every item, in alternating order from round to round, so a burst or a
    slow drift of a shared machine's load touches all items alike instead of spoiling a few.

    Args:
        items:
            ``(fn, example_input)`` pairs, as :func:`measure_latency` takes them.
        rounds:
            Rounds over all items.
        threads, warmup, min_run_time, clock:
            As :func:`measure_latency`.
        progress:
            Called as ``progress(done, total, index)`` after each timing.
    """
    check_positive_int(rounds, "rounds")
    samples: list[list[float]] = [[] for _ in items]
    done = 0
    for round_index in range(rounds):
        order = range(len(items)) if round_index % 2 == 0 else reversed(range(len(items)))
        for index in order:
            fn, x = items[index]
            samples[index].append(
                measure_latency(
                    fn, x, threads=threads, warmup=warmup, min_run_time=min_run_time, clock=clock
                )
            )
            done += 1
            if progress is not None:
                progress(done, rounds * len(items), index)
    return [float(statistics.median(values)) for values in samples]


def _seconds_per_call(timer: benchmark.Timer, number: int) -> float:
    # Timer.timeit(n) runs max(n // 100, 2) untimed calls, then times n calls. Reading the raw
    # block time skips the Measurement's quantile statistics, which cost more than a small
    # layer's block.
    return float(timer.timeit(number).raw_times[0]) / number
