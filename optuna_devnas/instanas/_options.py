"""MobileNetV2's block layout and the five options InstaNAS offers at every block.

The layout (expansion t, channels c, repeats n, stride s per stage) is MobileNetV2's (Sandler et
al., CVPR 2018, table 2) adapted to the input size as InstaNAS does for CIFAR (Cheng et al., AAAI
2020, section 4): a stride-1 stem and a stride-1 second stage on inputs of 32 pixels or less, and
no stride that would shrink a feature map below 2x2 (8x8 digits still work). The same layout
builds the static baseline, so both networks see the same feature-map sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn
from torchvision.models._utils import _make_divisible
from torchvision.ops.misc import Conv2dNormActivation

from optuna_devnas._errors import InputShapeError

OPTION_NAMES: tuple[str, ...] = ("ir3x3_e6", "ir3x3_e3", "ir5x5_e6", "ir5x5_e3", "basic3x3")
"""The five options of a block, in policy order (InstaNAS section 3.1)."""

MBV2_OPTION = 0  # MobileNetV2's own block: inverted residual, 3x3 depthwise, expansion 6.
BASIC_OPTION = 4  # Two 3x3 convolutions: the fallback of a block that changes shape.

# MobileNetV2's stages, (t, c, n, s), with the ImageNet strides; adapted by ``stage_setting``.
_MBV2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


@dataclass(frozen=True)
class BlockSpec:
    """Where a block sits: its channels, stride and the size of the feature map it receives."""

    index: int
    in_channels: int
    out_channels: int
    stride: int
    input_size: tuple[int, int]

    @property
    def changes_shape(self) -> bool:
        """Whether the block changes channels or resolution (so it cannot be the identity)."""
        return self.stride != 1 or self.in_channels != self.out_channels

    @property
    def output_size(self) -> tuple[int, int]:
        return _strided(self.input_size[0], self.stride), _strided(self.input_size[1], self.stride)


def _strided(size: int, stride: int) -> int:
    return (size + stride - 1) // stride  # odd kernels with "same" padding


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or any(s < 1 for s in shape):
        raise InputShapeError(
            f"Got input_shape={tuple(input_shape)}, but expected (channels, height, width)."
        )
    return shape[0], shape[1], shape[2]


def default_stem_stride(input_shape: Sequence[int]) -> int:
    """1 for inputs of 32 pixels or less (CIFAR-style), else 2 as on ImageNet."""
    return 1 if max(input_shape[-2:]) <= 32 else 2


def stage_setting(
    input_shape: Sequence[int], *, stem_stride: int | None = None
) -> tuple[int, list[list[int]]]:
    """The stem stride and MobileNetV2's ``[t, c, n, s]`` stages adapted to ``input_shape``.

    The list has the form torchvision's ``MobileNetV2(inverted_residual_setting=...)`` takes.
    """
    _, height, width = check_input_shape(input_shape)
    stem = default_stem_stride(input_shape) if stem_stride is None else stem_stride
    if stem not in (1, 2):
        raise ValueError(f"Got stem_stride={stem_stride!r}, but expected 1, 2 or None.")
    size = min(_strided(height, stem), _strided(width, stem))
    small = max(height, width) <= 32
    stages: list[list[int]] = []
    for position, (t, c, n, s) in enumerate(_MBV2_STAGES):
        if position == 1 and small:
            s = 1  # InstaNAS's CIFAR layout keeps 32x32 through the second stage.
        if s == 2 and _strided(size, 2) < 2:
            s = 1  # Never below 2x2: tiny inputs (8x8 digits) keep their last maps.
        size = _strided(size, s)
        stages.append([t, c, n, s])
    return stem, stages


def block_specs(
    input_shape: Sequence[int], *, width_mult: float = 1.0, stem_stride: int | None = None
) -> tuple[int, int, int, list[BlockSpec]]:
    """``(stem stride, stem channels, last channels, the 17 block specs)`` of the layout."""
    if not width_mult > 0:
        raise ValueError(f"Got width_mult={width_mult!r}, but expected a positive number.")
    _, height, width = check_input_shape(input_shape)
    stem, stages = stage_setting(input_shape, stem_stride=stem_stride)
    channels = _make_divisible(STEM_CHANNELS * width_mult, 8)
    size = (_strided(height, stem), _strided(width, stem))
    specs: list[BlockSpec] = []
    for _, c, n, s in stages:
        out = _make_divisible(c * width_mult, 8)
        for repeat in range(n):
            stride = s if repeat == 0 else 1
            specs.append(BlockSpec(len(specs), channels, out, stride, size))
            channels = out
            size = specs[-1].output_size
    last = _make_divisible(LAST_CHANNELS * max(1.0, width_mult), 8)
    return stem, _make_divisible(STEM_CHANNELS * width_mult, 8), last, specs


def _inverted_residual(spec: BlockSpec, kernel_size: int, expansion: int) -> nn.Sequential:
    # torchvision's InvertedResidual fixes the depthwise kernel at 3x3 and adds its own skip
    # connection; a meta-graph block sums several options and adds the identity once, so the
    # branch is built here from torchvision's Conv2dNormActivation, MobileNetV2 style.
    hidden = int(round(spec.in_channels * expansion))
    return nn.Sequential(
        Conv2dNormActivation(spec.in_channels, hidden, kernel_size=1, activation_layer=nn.ReLU6),
        Conv2dNormActivation(
            hidden,
            hidden,
            kernel_size=kernel_size,
            stride=spec.stride,
            groups=hidden,
            activation_layer=nn.ReLU6,
        ),
        Conv2dNormActivation(hidden, spec.out_channels, kernel_size=1, activation_layer=None),
    )


def _basic(spec: BlockSpec) -> nn.Sequential:
    # ResNet's basic block without its skip connection (the meta-graph block adds that).
    return nn.Sequential(
        Conv2dNormActivation(spec.in_channels, spec.out_channels, stride=spec.stride),
        Conv2dNormActivation(spec.out_channels, spec.out_channels, activation_layer=None),
    )


def build_option(spec: BlockSpec, option: int) -> nn.Sequential:
    """The branch of option ``option`` (an index into :data:`OPTION_NAMES`) at ``spec``."""
    if option == BASIC_OPTION:
        return _basic(spec)
    kernel_size, expansion = ((3, 6), (3, 3), (5, 6), (5, 3))[option]
    return _inverted_residual(spec, kernel_size, expansion)
