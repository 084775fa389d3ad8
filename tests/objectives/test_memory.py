from __future__ import annotations

import pytest
from torch import nn

from optuna_devnas.objectives import PeakMemory
from optuna_devnas.spaces import CellSpace


def test_peak_memory_of_a_convolution_is_weights_input_and_output() -> None:
    conv = nn.Conv2d(3, 16, 3, padding=1, bias=False)
    weights = 16 * 3 * 9 * 4
    image = 3 * 32 * 32 * 4
    output = 16 * 32 * 32 * 4
    assert PeakMemory(input_shape=(1, 3, 32, 32))(conv) == weights + image + output


def test_peak_memory_of_networks_counts_parameters_and_grows_with_the_batch() -> None:
    arch = CellSpace().architecture(["conv3x3", "bn_relu"])
    one = PeakMemory(input_shape=(1, 3, 16, 16))
    model = one.build(arch)
    parameter_bytes = 4 * sum(p.numel() for p in model.parameters())
    assert one(model) > parameter_bytes + 3 * 16 * 16 * 4
    eight = PeakMemory(input_shape=(8, 3, 16, 16))(model)
    activations_one = one(model) - parameter_bytes
    assert eight - parameter_bytes > 4 * activations_one


def test_peak_memory_rejects_unknown_devices() -> None:
    with pytest.raises(ValueError, match="device='tpu'"):
        PeakMemory(device="tpu")
