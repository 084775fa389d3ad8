from __future__ import annotations

import math

import pytest

from optuna_devnas.objectives import Latency
from optuna_devnas.spaces import Architecture

SHAPE = (1, 3, 32, 32)


def measure(arch: Architecture, **kwargs: object) -> float:
    latency = Latency(input_shape=SHAPE, min_run_time=0.01, repeats=3, **kwargs)  # type: ignore[arg-type]
    value = latency(arch)
    assert len(latency.measurements) == 3
    assert value == sorted(latency.measurements)[1]
    return value


def test_latency_is_positive_finite_and_grows_with_width_and_depth() -> None:
    small = Architecture(layers=("conv3x3",), depths=(1, 1, 1), growth_rates=(4, 4, 4))
    wide = Architecture(layers=("conv3x3",), depths=(1, 1, 1), growth_rates=(96, 96, 96))
    deep = Architecture(layers=("conv3x3",), depths=(8, 8, 8), growth_rates=(4, 4, 4))
    seconds = {arch: measure(arch) for arch in (small, wide, deep)}
    assert all(0 < s < 1 and math.isfinite(s) for s in seconds.values())
    # The true ratios are about 5x and 8x; other work on the machine adds noise, hence 1.5x.
    assert seconds[wide] > 1.5 * seconds[small]
    assert seconds[deep] > 1.5 * seconds[small]


def test_onnxruntime_backend_measures_the_exported_network() -> None:
    arch = Architecture(layers=("learned_group_conv1x1", "bn_relu", "depthwise_conv3x3"))
    seconds = measure(arch, backend="onnxruntime")
    assert 0 < seconds < 1 and math.isfinite(seconds)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "tpu"}, "device='tpu'"),
        ({"repeats": 0}, "repeats=0"),
        ({"threads": -1}, "threads=-1"),
        ({"warmup": -2}, "warmup=-2"),
        ({"min_run_time": 0.0}, "min_run_time=0.0"),
        ({"backend": "tvm"}, "backend='tvm'"),
        ({"clock": "thread", "threads": 2}, "threads=2"),
        ({"input_shape": (3, 0, 32)}, r"input_shape=\(3, 0, 32\)"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Latency(**kwargs)
