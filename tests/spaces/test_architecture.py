from __future__ import annotations

import json

import pytest
import torch

from optuna_devnas import Architecture, InputShapeError, InvalidArchitectureError
from optuna_devnas.spaces import CONVOLUTIONS, NORMALIZATIONS, CellSpace, condense


def test_children_follow_the_alternation_rule() -> None:
    one = Architecture(layers=("conv3x3",))
    children = one.children()
    assert len(children) == len(NORMALIZATIONS) == 3
    assert {c.layers[-1] for c in children} == set(NORMALIZATIONS)
    grandchildren = children[0].children()
    assert len(grandchildren) == len(CONVOLUTIONS) == 6
    assert all(g.layers[:2] == children[0].layers for g in grandchildren)
    assert len(set(grandchildren)) == 6


def test_json_round_trip_and_hashing() -> None:
    arch = Architecture(
        layers=("learned_group_conv1x1", "bn_relu", "conv3x3"), depths=(1, 2), growth_rates=(4, 8)
    )
    again = Architecture.from_json(arch.to_json())
    assert again == arch and hash(again) == hash(arch)
    assert json.loads(arch.to_json())["layers"] == ["learned_group_conv1x1", "bn_relu", "conv3x3"]
    assert len({arch, again, arch.with_layers(("conv1x1",))}) == 2
    assert str(arch) == "learned_group_conv1x1-bn_relu-conv3x3"


@pytest.mark.parametrize(
    "layers, message",
    [
        ((), "empty cell"),
        (("conv3x3",) * 1 + ("bn",) + ("conv3x3", "bn") * 6, "at most 12"),
        (("sepconv5x5",), "position 0 takes a convolution"),
        (("conv3x3", "conv3x3"), "position 1 takes a normalization"),
    ],
)
def test_bad_cells_are_rejected(layers: tuple[str, ...], message: str) -> None:
    with pytest.raises(InvalidArchitectureError, match=message):
        Architecture(layers=layers)


def test_bad_macro_settings_and_json_keys_are_rejected() -> None:
    with pytest.raises(InvalidArchitectureError, match="growth_rates"):
        Architecture(layers=("conv1x1",), depths=(1, 1), growth_rates=(8,))
    with pytest.raises(InvalidArchitectureError, match="expected 'layers'"):
        Architecture.from_dict({"layers": ["conv1x1"], "width": 3})


def test_same_architecture_builds_same_parameter_names() -> None:
    arch = Architecture(layers=("group_conv3x3", "bn_relu", "learned_group_conv1x1", "bn"))
    first = arch.build(num_classes=10, input_shape=(1, 8, 8)).state_dict()
    second = Architecture.from_json(arch.to_json()).build(10, (1, 8, 8)).state_dict()
    assert list(first) == list(second)
    assert {k: v.shape for k, v in first.items()} == {k: v.shape for k, v in second.items()}


@pytest.mark.parametrize("conv", CONVOLUTIONS)
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_networks_run_on_small_and_cifar_inputs(conv: str, shape: tuple[int, int, int]) -> None:
    arch = Architecture(layers=(conv, "bn_relu", "conv3x3"))
    model = arch.build(num_classes=10, input_shape=shape)
    x = torch.randn(2, *shape)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    model.eval()
    deployed = condense(model)
    assert torch.allclose(deployed(x), model(x), atol=1e-5) or conv == "learned_group_conv1x1"


def test_condensed_network_matches_pruned_training_network() -> None:
    from optuna_devnas.spaces import condense_stage

    torch.manual_seed(0)
    model = Architecture(layers=("learned_group_conv1x1", "bn_relu")).build(10, (1, 8, 8))
    condense_stage(model, 3)
    model.eval()
    x = torch.randn(4, 1, 8, 8)
    assert torch.allclose(condense(model)(x), model(x), atol=1e-5)


def test_wrong_input_shapes_get_clear_errors() -> None:
    arch = Architecture(layers=("conv3x3",))
    with pytest.raises(InputShapeError, match="at least 4x4"):
        arch.build(num_classes=10, input_shape=(1, 2, 2))
    with pytest.raises(InputShapeError, match="channels, height, width"):
        arch.build(num_classes=10, input_shape=(8, 8))
    model = arch.build(num_classes=10, input_shape=(1, 8, 8))
    with pytest.raises(InputShapeError, match=r"built for \(batch, 1, 8, 8\)"):
        model(torch.randn(2, 3, 32, 32))
    with pytest.raises(InputShapeError):
        model(torch.randn(1, 8, 8))


def test_canonical_architecture_drops_a_trailing_identity_only() -> None:
    space = CellSpace(max_layers=4)
    assert space.architecture(["conv1x1", "identity"]).canonical() == space.architecture(
        ["conv1x1"]
    )
    inner = space.architecture(["conv1x1", "identity", "conv3x3"])
    assert inner.canonical() == inner
    distinct = {a.canonical() for n in range(1, 5) for a in space.enumerate(n)}
    assert space.size() == 456 and len(distinct) == 456 - 6 - 6 * 3 * 6


def test_canonical_architecture_builds_the_same_network() -> None:
    space = CellSpace(max_layers=4)
    long = space.architecture(["conv3x3", "bn", "learned_group_conv1x1", "identity"])
    nets = []
    for arch in (long, long.canonical()):
        torch.manual_seed(0)
        nets.append(arch.build(num_classes=10, input_shape=(1, 8, 8)).eval())
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(nets[0](x), nets[1](x))
    assert sum(p.numel() for p in nets[0].parameters()) == sum(
        p.numel() for p in nets[1].parameters()
    )
