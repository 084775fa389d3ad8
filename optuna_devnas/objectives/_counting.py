"""Size and compute of a network, counted exactly: parameters and FLOPs.

Both are deterministic, cheap and device independent, so ``DPPSampler`` can compute them for
every candidate (DPP-Net section 3.3 uses the parameter count and FLOPs as device-agnostic
objectives). Both count the deployed form by default: a CondenseNet learned group convolution
keeps a quarter of its connections after condensation, so its training form would overstate
the size of what runs on the device by up to 4x.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from optuna_devnas.objectives._base import InferenceObjective


class ParamCount(InferenceObjective):
    """Number of parameters of a network's deployed form (minimize).

    Counts the elements of ``model.parameters()`` (shared parameters once) of the condensed
    network: buffers such as batch-norm statistics and gather indices are not parameters.
    ``condensed=False`` counts the training form instead (learned group convolutions dense).

    Example:

        .. code-block:: python

            size = ParamCount(input_shape=(1, 8, 8))
            size(CellSpace().architecture(["conv1x1"]))  # 8410.0

    Args:
        num_classes:
            Classes of the networks built from architectures (the head's size). Default 10.
        input_shape:
            Input ``(channels, height, width)``, optionally with a batch size first; the
            channels size the stem. Default (1, 3, 32, 32).
        condensed:
            Count the condensed (deployed) form. Default True.
    """

    name = "params"
    direction = "minimize"

    def evaluate(self, model: nn.Module) -> float:
        return float(sum(p.numel() for p in self.inference_model(model).parameters()))


class FLOPs(InferenceObjective):
    """Floating-point operations of one forward pass, by ``torch.utils.flop_counter`` (minimize).

    ``FlopCounterMode`` counts matrix multiplications and convolutions, two operations per
    multiply-add (a ``k x k`` convolution from ``c_in`` to ``c_out`` channels on an ``h x w``
    output: ``2 * c_out * h * w * k * k * c_in / groups`` per image); normalization, activation,
    pooling and concatenation are not counted. Divide by 2 for multiply-adds (MACs), the unit
    many papers report.

    Example:

        .. code-block:: python

            flops = FLOPs(input_shape=(1, 1, 8, 8))
            flops(CellSpace().architecture(["conv3x3", "bn_relu"]))

    Args:
        num_classes:
            Classes of the networks built from architectures. Default 10.
        input_shape:
            ``(batch, channels, height, width)`` of the counted forward pass (batch 1 when
            given as ``(channels, height, width)``). Default (1, 3, 32, 32).
        condensed:
            Count the condensed (deployed) form. Default True.
    """

    name = "flops"
    direction = "minimize"

    def evaluate(self, model: nn.Module) -> float:
        model = self.inference_model(model)
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        x = torch.zeros(self.batch_shape, device=device)
        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            model(x)
        return float(counter.get_total_flops())
