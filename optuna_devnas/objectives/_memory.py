"""Peak inference memory of a network: parameters, buffers and the largest live activations.

What a device must hold to run one forward pass. On a GPU the CUDA caching allocator measures it
(``torch.cuda.max_memory_allocated``, which includes convolution workspaces and rounds blocks
to 512 bytes). On a CPU, where torch keeps no allocator statistics, torch's own memory tracker
(``torch.distributed._tools.mem_tracker.MemTracker``) follows every tensor that an operator
creates until it is freed; its peak counts parameters, buffers, the input and the live
activations, but not the scratch buffers that operators allocate and free internally.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from optuna_devnas._device import resolve_device
from optuna_devnas.objectives._base import InferenceObjective


def _tensor_bytes(tensors: Sequence[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class PeakMemory(InferenceObjective):
    """Peak bytes held during one inference forward pass (minimize).

    The value is ``parameters + buffers + input + the peak of the activations alive at once``
    for the deployed (condensed) network in eval mode without autograd. Dense connectivity
    makes it interesting: a dense stage keeps its growing concatenation alive while each cell
    runs.

    Example:

        .. code-block:: python

            memory = PeakMemory(input_shape=(1, 3, 32, 32))
            memory(CellSpace().architecture(["conv3x3", "bn_relu"]))  # bytes

    Args:
        device:
            ``"cpu"`` (torch's memory tracker) or ``"cuda"`` (the CUDA allocator). Default
            ``"cpu"``.
        num_classes:
            Classes of the networks built from architectures. Default 10.
        input_shape:
            ``(batch, channels, height, width)`` of the forward pass (batch 1 when given as
            ``(channels, height, width)``). Default (1, 3, 32, 32).
        condensed:
            Measure the condensed (deployed) form. Default True.
    """

    name = "peak_memory"
    direction = "minimize"

    def __init__(
        self,
        *,
        device: str = "cpu",
        num_classes: int = 10,
        input_shape: Sequence[int] = (1, 3, 32, 32),
        condensed: bool = True,
    ) -> None:
        super().__init__(num_classes=num_classes, input_shape=input_shape, condensed=condensed)
        self.device = resolve_device(device)

    def evaluate(self, model: nn.Module) -> float:
        model = self.inference_model(model).to(self.device)
        x = torch.zeros(self.batch_shape, device=self.device)
        if self.device.type == "cuda":
            return float(self._cuda_peak(model, x))
        return float(self._cpu_peak(model, x))

    def _cpu_peak(self, model: nn.Module, x: torch.Tensor) -> int:
        # Written with torch's tracker rather than by hand: it follows tensor lifetimes through
        # views and in-place operators, which forward hooks cannot see.
        from torch.distributed._tools.mem_tracker import MemTracker

        tracker = MemTracker()
        tracker.track_external(model, x)
        with torch.inference_mode(), tracker:
            model(x)
        snapshot = tracker.get_tracker_snapshot("peak")
        return int(snapshot[x.device]["Total"])

    def _cuda_peak(self, model: nn.Module, x: torch.Tensor) -> int:
        held = _tensor_bytes([*model.parameters(), *model.buffers(), x])
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        # Other tensors of this process are already allocated: count only what the pass adds.
        before = torch.cuda.memory_allocated(self.device)
        with torch.inference_mode():
            model(x)
        torch.cuda.synchronize(self.device)
        return held + torch.cuda.max_memory_allocated(self.device) - before
