"""Measured inference latency of a network on a device: the ``Latency`` objective.

The network is measured in its deployed form (condensed, eval mode, no autograd) at batch size
1 by default, with a fixed number of threads, through :func:`measure_latency`, and the median
over several repeated measurements is reported (DPP-Net section 4.2 measures on each target
device the same way). The optional ONNX Runtime backend exports the network to ONNX and times
an ONNX Runtime session on the CPU, closer to how networks are deployed on CPUs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import importlib.util
import io
import statistics
from typing import Any
import warnings

import torch
from torch import nn

from optuna_devnas._device import resolve_device
from optuna_devnas.objectives._base import InferenceObjective, check_positive_int
from optuna_devnas.objectives._timing import measure_latency, resolve_clock

BACKENDS = ("torch", "onnxruntime")


def onnx_session_function(
    model: nn.Module, example_input: torch.Tensor, *, threads: int
) -> Callable[[torch.Tensor], object]:
    """A function that runs ``model``, exported to ONNX, in an ONNX Runtime CPU session.

    The returned function ignores its argument and feeds ``example_input`` (converted once to
    NumPy), so the timing holds only the session's work.
    """
    import onnxruntime

    buffer: Any = io.BytesIO()  # typed as a path in torch's stubs, but a file object works
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated, but it exports these small static
        # graphs about 10x faster than the torch.export-based one (0.5 s against 8 s per
        # network on our CPUs), which matters when every candidate of a search is measured.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example_input,), buffer, dynamo=False, input_names=["x"], output_names=["y"]
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(
        buffer.getvalue(), options, providers=["CPUExecutionProvider"]
    )
    feed = {"x": example_input.detach().cpu().numpy()}

    def run(_: torch.Tensor) -> object:
        return session.run(None, feed)

    return run


def check_backend(backend: str, device: torch.device) -> None:
    """Raise ``ValueError`` unless ``backend`` is known and can run on ``device``."""
    if backend not in BACKENDS:
        raise ValueError(f"Got backend={backend!r}, but expected one of {BACKENDS}.")
    if backend == "onnxruntime" and device.type != "cpu":
        raise ValueError(
            f"Got backend='onnxruntime' with device={str(device)!r}, but the ONNX Runtime "
            "backend runs on the CPU; use device='cpu' or backend='torch'."
        )
    if backend == "onnxruntime" and importlib.util.find_spec("onnxruntime") is None:
        raise ImportError(
            "backend='onnxruntime' needs ONNX Runtime: pip install 'optuna-devnas[onnx]'."
        )


class Latency(InferenceObjective):
    """Measured seconds per forward pass of the deployed network on a device (minimize).

    Each of ``repeats`` measurements is the median of timed blocks
    (:func:`~optuna_devnas.objectives.measure_latency`); the objective's value is the median of
    the repeats, and the repeats themselves are kept in :attr:`measurements`.

    Example:

        .. code-block:: python

            latency = Latency(device="cpu", input_shape=(1, 3, 32, 32), threads=1)
            seconds = latency(CellSpace().architecture(["conv3x3", "bn_relu"]))

    Args:
        device:
            Torch device, ``"cpu"`` or ``"cuda"`` (``"cuda:1"``, ...). Default ``"cpu"``.
        input_shape:
            ``(batch, channels, height, width)`` of the timed input (batch 1 when given as
            ``(channels, height, width)``). Default (1, 3, 32, 32).
        num_classes:
            Classes of the networks built from architectures. Default 10.
        threads:
            Intra-op CPU threads during the measurement. Default 1.
        warmup:
            Untimed calls before each measurement. Default 3.
        repeats:
            Measurements whose median is reported. Default 5.
        min_run_time:
            Seconds of timed calls per measurement at least. Default 0.05.
        backend:
            ``"torch"`` (eager PyTorch) or ``"onnxruntime"`` (ONNX Runtime on the CPU; needs
            the ``onnx`` extra). Default ``"torch"``.
        clock:
            ``"auto"``, ``"wall"`` or ``"thread"``: see
            :func:`~optuna_devnas.objectives.resolve_clock`. ``"auto"`` times one CPU thread by
            its CPU time, which other processes on a shared machine disturb less, and
            everything else by the wall clock. Default ``"auto"``.
        condensed:
            Measure the condensed (deployed) form. Default True.
    """

    name = "latency"
    direction = "minimize"

    def __init__(
        self,
        *,
        device: str = "cpu",
        input_shape: Sequence[int] = (1, 3, 32, 32),
        num_classes: int = 10,
        threads: int = 1,
        warmup: int = 3,
        repeats: int = 5,
        min_run_time: float = 0.05,
        backend: str = "torch",
        clock: str = "auto",
        condensed: bool = True,
    ) -> None:
        super().__init__(num_classes=num_classes, input_shape=input_shape, condensed=condensed)
        self.device = resolve_device(device)
        self.threads = check_positive_int(threads, "threads")
        self.repeats = check_positive_int(repeats, "repeats")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"Got warmup={warmup!r}, but expected a non-negative integer.")
        self.warmup = warmup
        if isinstance(min_run_time, bool) or not min_run_time > 0:
            raise ValueError(f"Got min_run_time={min_run_time!r}, but expected a positive number.")
        self.min_run_time = float(min_run_time)
        check_backend(backend, self.device)
        self.backend = backend
        self.clock = resolve_clock(clock, device=self.device, threads=self.threads)
        self.measurements: list[float] = []

    def timed_function(
        self, model: nn.Module
    ) -> tuple[Callable[[torch.Tensor], object], torch.Tensor]:
        """The deployed network as the function :func:`measure_latency` times, and its input."""
        model = self.inference_model(model).to(self.device)
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(self.batch_shape, generator=generator).to(self.device)
        if self.backend == "onnxruntime":
            return onnx_session_function(model, x, threads=self.threads), x
        return model, x

    def evaluate(self, model: nn.Module) -> float:
        fn, x = self.timed_function(model)
        self.measurements = [
            measure_latency(
                fn,
                x,
                threads=self.threads,
                warmup=self.warmup,
                min_run_time=self.min_run_time,
                clock=self.clock,
            )
            for _ in range(self.repeats)
        ]
        return float(statistics.median(self.measurements))
