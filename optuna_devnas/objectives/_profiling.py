"""How a ``LatencyTable`` is profiled: what is timed, in which order, and on what device.

Every layer shape of the space (:func:`space_layer_shapes`), a skeleton network for the fixed
overhead and a few calibration networks are timed with :func:`measure_latency` in interleaved
rounds, alternating the order from round to round so a slow drift of the machine's load evens
out; each item keeps its median over rounds. Only torch and this package are needed, so
``devnas profile`` runs on a bare target device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import os
import platform
import random
import time
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from optuna_devnas._device import resolve_device
from optuna_devnas.objectives._base import batched_shape, check_num_classes, check_positive_int
from optuna_devnas.objectives._latency import check_backend, onnx_session_function
from optuna_devnas.objectives._layer_shapes import skeleton_network, space_layer_shapes
from optuna_devnas.objectives._timing import interleaved_medians, resolve_clock
from optuna_devnas.spaces import Architecture, CellSpace, choices_at, condense

if TYPE_CHECKING:
    from optuna_devnas.objectives._latency_table import LatencyTable

ProgressCallback = Callable[[int, int, str], None]
"""``progress(done, total, label)``, called after each timed item while profiling."""


def describe_device(device: torch.device, threads: int) -> dict[str, Any]:
    """What a table's numbers depend on: processor, threads, torch and platform."""
    description: dict[str, Any] = {
        "type": device.type,
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "torch_version": torch.__version__,
        "platform": platform.platform(),
        "python_version": platform.python_version(),
    }
    if device.type == "cuda":
        description["cuda_device"] = torch.cuda.get_device_name(device)
    return description


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith(("model name", "hardware", "processor\t: a")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def calibration_architectures(space: CellSpace, count: int, seed: int) -> list[Architecture]:
    """The one-layer cells, then random longer cells, ``count`` distinct ones at most."""
    chosen = list(space.initial())[:count]
    rng = random.Random(seed)
    total = min(count, space.size())
    while len(chosen) < total:
        n_layers = rng.randint(2, space.max_layers)
        arch = space.architecture([rng.choice(choices_at(i)) for i in range(n_layers)])
        if arch not in chosen:
            chosen.append(arch)
    return chosen


def _profile_items(
    space: CellSpace,
    template: Architecture,
    networks: Sequence[Architecture],
    num_classes: int,
    batch_shape: tuple[int, ...],
    network_input: torch.Tensor,
) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """What one profile times: every distinct layer of the space and the calibration networks."""
    device = network_input.device
    items: list[tuple[str, nn.Module, torch.Tensor]] = []
    for shape in space_layer_shapes(space, batch_shape[1:]):
        module = shape.build().to(device)
        items.append((shape.key, module, shape.example_input(batch_shape[0]).to(device)))
    skeleton = skeleton_network(template, num_classes=num_classes, batch_shape=batch_shape)
    items.append(("overhead", skeleton.to(device), network_input))
    for arch in networks:
        network = arch.build(num_classes=num_classes, input_shape=batch_shape[1:])
        items.append((f"network:{arch}", condense(network).eval().to(device), network_input))
    return items


def _checked(
    space: CellSpace,
    device: str,
    threads: int,
    rounds: int,
    calibration: int,
    clock: str,
    backend: str,
    input_shape: Sequence[int],
    num_classes: int,
) -> tuple[torch.device, str, tuple[int, ...]]:
    """Validate ``profile``'s arguments: the device, the clock and the batched input shape."""
    if not isinstance(space, CellSpace):
        raise TypeError(f"Got space={space!r}, but expected a CellSpace.")
    torch_device = resolve_device(device)
    check_positive_int(threads, "threads")
    check_positive_int(rounds, "rounds")
    if isinstance(calibration, bool) or not isinstance(calibration, int) or calibration < 0:
        raise ValueError(f"Got calibration={calibration!r}, but expected a non-negative integer.")
    resolved_clock = resolve_clock(clock, device=torch_device, threads=threads)
    check_backend(backend, torch_device)
    check_num_classes(num_classes)
    return torch_device, resolved_clock, batched_shape(input_shape)


def profile_table(
    cls: type[LatencyTable],
    space: CellSpace,
    *,
    input_shape: Sequence[int],
    num_classes: int,
    device: str,
    threads: int,
    warmup: int,
    min_run_time: float,
    rounds: int,
    calibration: int,
    clock: str,
    seed: int,
    progress: ProgressCallback | None,
    backend: str = "torch",
) -> LatencyTable:
    """``LatencyTable.profile`` (see its documentation for the arguments)."""

    torch_device, resolved_clock, batch_shape = _checked(
        space, device, threads, rounds, calibration, clock, backend, input_shape, num_classes
    )
    template = space.initial()[0]
    # Build once up front: a bad input shape fails here with the network's own message.
    template.build(num_classes=num_classes, input_shape=batch_shape[1:])
    generator = torch.Generator().manual_seed(seed)
    network_input = torch.randn(batch_shape, generator=generator).to(torch_device)

    networks = calibration_architectures(space, calibration, seed)
    items = _profile_items(space, template, networks, num_classes, batch_shape, network_input)

    start = time.perf_counter()
    labels = [label for label, _, _ in items]

    def report(done: int, total: int, index: int) -> None:
        if progress is not None:
            progress(done, total, labels[index])

    runnable: list[tuple[Callable[[torch.Tensor], object], torch.Tensor]]
    if backend == "onnxruntime":
        runnable = [(onnx_session_function(m, x, threads=threads), x) for _, m, x in items]
    else:
        runnable = [(module, x) for _, module, x in items]
    seconds = interleaved_medians(
        runnable,
        rounds=rounds,
        threads=threads,
        warmup=warmup,
        min_run_time=min_run_time,
        clock=resolved_clock,
        progress=report,
    )
    median = dict(zip(labels, seconds, strict=True))
    overhead = median.pop("overhead")
    entries = {key: value for key, value in median.items() if not key.startswith("network:")}
    table = cls(
        space=space,
        input_shape=batch_shape,
        entries=entries,
        overhead=overhead,
        num_classes=num_classes,
        device=describe_device(torch_device, threads),
        settings={
            "threads": threads,
            "warmup": warmup,
            "min_run_time": min_run_time,
            "rounds": rounds,
            "clock": resolved_clock,
            "seed": seed,
            "backend": backend,
            "profile_seconds": round(time.perf_counter() - start, 3),
        },
    )
    table.calibrate({arch: median[f"network:{arch}"] for arch in networks})
    return table
