from __future__ import annotations

import math
import time

import pytest
import torch

from optuna_devnas.objectives import measure_latency, resolve_clock


def test_latency_of_a_layer_is_positive_and_finite() -> None:
    conv = torch.nn.Conv2d(8, 8, 3, padding=1).eval()
    seconds = measure_latency(conv, torch.randn(1, 8, 8, 8), min_run_time=0.005)
    assert 0 < seconds < 1 and math.isfinite(seconds)


def test_thread_clock_ignores_waiting_and_wall_clock_counts_it() -> None:
    def sleep(_: torch.Tensor) -> None:
        time.sleep(0.002)

    x = torch.zeros(1)
    wall = measure_latency(sleep, x, warmup=0, min_run_time=0.01, clock="wall")
    thread = measure_latency(sleep, x, warmup=0, min_run_time=0.0005, clock="thread")
    assert wall >= 0.002
    assert thread < 0.001


def test_thread_count_is_restored() -> None:
    before = torch.get_num_threads()
    measure_latency(torch.nn.Identity(), torch.zeros(1), threads=1, min_run_time=0.001)
    assert torch.get_num_threads() == before


def test_auto_clock_and_refused_combinations() -> None:
    assert resolve_clock("auto", device="cpu", threads=1) == "thread"
    assert resolve_clock("auto", device="cpu", threads=2) == "wall"
    assert resolve_clock("auto", device="cuda", threads=1) == "wall"
    with pytest.raises(ValueError, match="threads=2"):
        resolve_clock("thread", device="cpu", threads=2)
    with pytest.raises(ValueError, match="device='cuda'"):
        resolve_clock("thread", device="cuda", threads=1)
    with pytest.raises(ValueError, match="clock='cpu'"):
        resolve_clock("cpu")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threads": 0}, "threads=0"),
        ({"warmup": -1}, "warmup=-1"),
        ({"min_run_time": 0}, "min_run_time=0"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        measure_latency(torch.nn.Identity(), torch.zeros(1), **kwargs)
