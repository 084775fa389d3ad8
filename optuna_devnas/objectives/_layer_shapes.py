"""The shape of every layer of a DPP-Net network, without building it: a latency table's keys.

A layer's cost depends on its choice and its shape: input and output channels and the feature
map's height and width. In the dense network those depend on the stage (spatial size, growth
rate), on the cell's index in its stage (a cell's first convolution reads the concatenation of
all earlier cells), on whether a convolution is the cell's last (it outputs the growth rate,
inner ones ``bottleneck x growth rate``), and on nothing else: never on the choices of the
other layers. So a table needs one entry per (choice, shape), and every shape of a space is
enumerated here from the architectures' lengths alone (one architecture per length suffices).

The same rules are in ``optuna_devnas.spaces._network``; a test checks the two agree on every
layer of real networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from optuna_devnas.spaces import (
    Architecture,
    CellSpace,
    DenseStage,
    LearnedGroupConv,
    build_convolution,
    build_normalization,
    choices_at,
    is_convolution,
)


@dataclass(frozen=True, order=True)
class LayerShape:
    """One layer of a cell at one place in the network: its choice and its tensor shapes."""

    layer: str
    in_channels: int
    out_channels: int
    height: int
    width: int

    @property
    def key(self) -> str:
        """The table key, e.g. ``"conv3x3:24->32@8x8"``."""
        return f"{self.layer}:{self.in_channels}->{self.out_channels}@{self.height}x{self.width}"

    def build(self) -> nn.Module:
        """The layer in inference form (learned group convolutions condensed), eval mode."""
        if is_convolution(self.layer):
            module = build_convolution(self.layer, self.in_channels, self.out_channels)
            if isinstance(module, LearnedGroupConv):
                module.condense_stage(module.condense_factor - 1)
                return module.condensed().eval()
            return module.eval()
        return build_normalization(self.layer, self.in_channels).eval()

    def example_input(self, batch_size: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        shape = (batch_size, self.in_channels, self.height, self.width)
        return torch.randn(shape, generator=generator)


def stage_sizes(arch: Architecture, image_shape: Sequence[int]) -> list[tuple[int, int]]:
    """``(height, width)`` of each dense stage: the image's, halved by each 2x2 pooling."""
    _, height, width = image_shape
    sizes = []
    for index in range(len(arch.depths)):
        if index > 0:
            height, width = height // 2, width // 2
        sizes.append((height, width))
    return sizes


def layer_shapes(arch: Architecture, image_shape: Sequence[int]) -> list[LayerShape]:
    """Every cell layer of ``arch``'s network on ``(channels, height, width)`` images, in order."""
    n_convolutions = sum(is_convolution(name) for name in arch.layers)
    shapes: list[LayerShape] = []
    stage_input = arch.stem_channels
    sizes = stage_sizes(arch, image_shape)
    for (depth, growth), (height, width) in zip(zip(arch.depths, arch.growth_rates), sizes):
        for cell in range(depth):
            channels = stage_input + cell * growth
            seen = 0
            for name in arch.layers:
                if is_convolution(name):
                    seen += 1
                    out = growth if seen == n_convolutions else arch.bottleneck * growth
                    shapes.append(LayerShape(name, channels, out, height, width))
                    channels = out
                else:
                    shapes.append(LayerShape(name, channels, channels, height, width))
        stage_input += depth * growth
    return shapes


def space_layer_shapes(space: CellSpace, image_shape: Sequence[int]) -> list[LayerShape]:
    """Every distinct (choice, shape) that a network of ``space`` can contain, sorted."""
    distinct: set[LayerShape] = set()
    for n_layers in range(1, space.max_layers + 1):
        # Shapes depend on the cell's length only; any cell of that length gives them.
        template = space.architecture([choices_at(i)[0] for i in range(n_layers)])
        for index, shape in enumerate(layer_shapes(template, image_shape)):
            for choice in choices_at(index % n_layers):
                distinct.add(
                    LayerShape(
                        choice, shape.in_channels, shape.out_channels, shape.height, shape.width
                    )
                )
    return sorted(distinct)


class _FixedOutput(nn.Module):
    """Stands in for a cell: returns a preallocated tensor of the cell's output shape."""

    output: torch.Tensor

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("output", output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output


def skeleton_network(
    arch: Architecture, *, num_classes: int, batch_shape: Sequence[int]
) -> nn.Module:
    """``arch``'s network with every cell replaced by a free stand-in, in eval mode.

    What remains is what every architecture of the space runs alike: the stem, the poolings,
    the concatenations, the head and the Python dispatch around the cells, the latency table's
    fixed overhead.
    """
    batch, *image_shape = batch_shape
    network = arch.build(num_classes=num_classes, input_shape=tuple(image_shape))
    stages = [stage for stage in network.stages if isinstance(stage, DenseStage)]
    sizes = stage_sizes(arch, image_shape)
    for stage, growth, (height, width) in zip(stages, arch.growth_rates, sizes):
        for index in range(len(stage.cells)):
            stage.cells[index] = _FixedOutput(torch.zeros(batch, growth, height, width))
    return network.eval()
