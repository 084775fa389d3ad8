from __future__ import annotations

import itertools

import pytest
import torch

from optuna_devnas.objectives import LayerShape, layer_shapes, space_layer_shapes
from optuna_devnas.objectives._layer_shapes import skeleton_network
from optuna_devnas.spaces import Architecture, CellSpace
from optuna_devnas.spaces._network import Cell


def shapes_seen_by_hooks(
    arch: Architecture, image_shape: tuple[int, int, int]
) -> list[LayerShape]:
    model = arch.build(num_classes=10, input_shape=image_shape).eval()
    seen: list[LayerShape] = []

    def hook(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        _, channels, height, width = inputs[0].shape
        seen.append(LayerShape(names[module], channels, output.shape[1], height, width))

    names: dict[torch.nn.Module, str] = {}
    for cell in (m for m in model.modules() if isinstance(m, Cell)):
        for name, layer in zip(arch.layers, cell):
            names[layer] = name
            layer.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, *image_shape))
    return seen


@pytest.mark.parametrize("image_shape", [(1, 8, 8), (3, 15, 17)])
@pytest.mark.parametrize(
    "layers",
    [
        ("conv1x1",),
        ("depthwise_conv3x3", "bn"),
        ("conv3x3", "identity", "learned_group_conv1x1"),
        ("group_conv3x3", "bn_relu", "group_conv1x1", "bn"),
    ],
)
def test_layer_shapes_match_the_built_network(layers: tuple, image_shape: tuple) -> None:
    arch = Architecture(layers=layers)
    assert layer_shapes(arch, image_shape) == shapes_seen_by_hooks(arch, image_shape)


def test_space_shapes_cover_every_architecture_and_are_shared() -> None:
    space = CellSpace(max_layers=3)
    table = set(space_layer_shapes(space, (1, 8, 8)))
    used: set[LayerShape] = set()
    for n_layers in range(1, 4):
        for arch in space.enumerate(n_layers):
            used.update(layer_shapes(arch, (1, 8, 8)))
    assert used == table
    # Convolutions: the first of a cell reads the cell's input (3 stages x 2 cells) and outputs
    # the growth rate (last) or bottleneck x growth; the second maps bottleneck x growth to the
    # growth rate (3 stages); 6 choices each. Normalizations: 2 widths per stage, 3 choices.
    assert len(table) == (3 * 2 * 2 + 3) * 6 + 3 * 2 * 3


@pytest.mark.parametrize(("max_layers", "entries"), [(1, 36), (4, 108), (5, 126)])
def test_entry_counts_grow_with_shapes_not_with_architectures(
    max_layers: int, entries: int
) -> None:
    # Four layers add no shape to three; a fifth adds an inner bottleneck-to-bottleneck
    # convolution per stage (3 x 6 entries), while the space grows 18-fold.
    assert len(space_layer_shapes(CellSpace(max_layers=max_layers), (1, 8, 8))) == entries


def test_skeleton_network_keeps_everything_but_the_cells() -> None:
    arch = Architecture(layers=("conv3x3", "bn_relu"))
    skeleton = skeleton_network(arch, num_classes=10, batch_shape=(2, 1, 8, 8))
    with torch.no_grad():
        assert skeleton(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert not any(isinstance(m, Cell) for m in skeleton.modules())
    keys = {shape.key for shape in layer_shapes(arch, (1, 8, 8))}
    assert "conv3x3:16->8@8x8" in keys and "bn_relu:128->128@2x2" not in keys
    assert all(a != b for a, b in itertools.pairwise(sorted(keys)))
