from __future__ import annotations

import pytest
import torch
from torch import nn

from optuna_devnas.objectives import FLOPs, ParamCount, layer_shapes
from optuna_devnas.spaces import CellSpace

DIGITS = (1, 8, 8)


def test_parameter_count_of_a_one_layer_cell_is_exact() -> None:
    arch = CellSpace().architecture(["conv1x1"])
    # stem 1*16*9; 1x1 convs 16->8, 24->8 | 32->16, 48->16 | 64->32, 96->32; head BN(128) and
    # Linear(128, 10) with bias.
    convs = 16 * 8 + 24 * 8 + 32 * 16 + 48 * 16 + 64 * 32 + 96 * 32
    expected = 1 * 16 * 9 + convs + 2 * 128 + 128 * 10 + 10
    assert expected == 8410
    assert ParamCount(input_shape=DIGITS)(arch) == expected


def test_learned_group_convs_are_counted_condensed() -> None:
    arch = CellSpace().architecture(["learned_group_conv1x1", "bn"])
    # Condensed, each output keeps a quarter of the inputs (CondenseNet's C = 4).
    convs = (16 * 8 + 24 * 8 + 32 * 16 + 48 * 16 + 64 * 32 + 96 * 32) // 4
    batch_norms = 2 * 2 * (8 + 16 + 32)  # two cells per stage, weight and bias per channel
    head = 2 * 128 + 128 * 10 + 10
    expected = 1 * 16 * 9 + convs + batch_norms + head
    assert ParamCount(input_shape=DIGITS)(arch) == expected
    dense = ParamCount(input_shape=DIGITS, condensed=False)(arch)
    assert dense == expected - convs + 4 * convs


@pytest.mark.parametrize(
    ("conv", "shape"),
    [
        (nn.Conv2d(3, 16, 3, padding=1, bias=False), (1, 3, 32, 32)),
        (nn.Conv2d(16, 32, 1, groups=4, bias=False), (2, 16, 8, 8)),
        (nn.Conv2d(24, 24, 3, padding=1, groups=24, bias=False), (1, 24, 5, 7)),
        (nn.Conv2d(8, 12, 3, stride=2, bias=False), (1, 8, 9, 9)),
    ],
)
def test_flops_of_a_convolution_equal_the_hand_count(conv: nn.Conv2d, shape: tuple) -> None:
    batch = shape[0]
    with torch.no_grad():
        out_h, out_w = conv(torch.zeros(shape)).shape[2:]
    k_h, k_w = conv.kernel_size
    per_output = k_h * k_w * conv.in_channels // conv.groups  # multiply-adds per output value
    expected = 2 * batch * conv.out_channels * out_h * out_w * per_output
    assert FLOPs(input_shape=shape)(conv) == expected


def test_flops_of_a_network_are_the_sum_of_its_layers() -> None:
    space = CellSpace()
    arch = space.architecture(["conv3x3", "bn_relu", "group_conv1x1", "identity"])
    expected = 2 * 16 * 8 * 8 * 9 * 1  # stem
    for shape in layer_shapes(arch, DIGITS):
        if shape.layer == "conv3x3":
            expected += 2 * shape.out_channels * shape.height * shape.width * 9 * shape.in_channels
        elif shape.layer == "group_conv1x1":
            expected += (
                2 * shape.out_channels * shape.height * shape.width * shape.in_channels // 4
            )
    expected += 2 * 128 * 10  # classifier
    assert FLOPs(input_shape=DIGITS)(arch) == expected


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"num_classes=1"):
        ParamCount(num_classes=1)
    with pytest.raises(ValueError, match=r"input_shape=\(3, 32\)"):
        FLOPs(input_shape=(3, 32))
    with pytest.raises(ValueError, match="condensed='yes'"):
        FLOPs(condensed="yes")  # type: ignore[arg-type]
