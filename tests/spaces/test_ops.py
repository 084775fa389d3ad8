from __future__ import annotations

import pytest
import torch

from optuna_devnas.spaces import CONVOLUTIONS, NORMALIZATIONS, LearnedGroupConv
from optuna_devnas.spaces._ops import build_convolution, build_normalization


@pytest.mark.parametrize("name", CONVOLUTIONS)
@pytest.mark.parametrize("size", [8, 32])
def test_convolution_forward_backward(name: str, size: int) -> None:
    conv = build_convolution(name, 24, 32)
    x = torch.randn(2, 24, size, size, requires_grad=True)
    y = conv(x)
    assert y.shape == (2, 32, size, size)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in conv.parameters())


@pytest.mark.parametrize("name", NORMALIZATIONS)
@pytest.mark.parametrize("size", [8, 32])
def test_normalization_forward_backward(name: str, size: int) -> None:
    norm = build_normalization(name, 16)
    x = torch.randn(4, 16, size, size, requires_grad=True)
    y = norm(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None
    if name == "bn_relu":
        assert (y >= 0).all()
    if name == "identity":
        assert torch.equal(y, x)


def test_group_convolutions_have_fewer_parameters() -> None:
    dense = build_convolution("conv3x3", 32, 32)
    grouped = build_convolution("group_conv3x3", 32, 32)
    depthwise = build_convolution("depthwise_conv3x3", 32, 32)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(dense) == 32 * 32 * 9
    assert count(grouped) == 32 * 32 * 9 // 4
    assert count(depthwise) == 32 * 9


def test_unknown_operation_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="conv7x7"):
        build_convolution("conv7x7", 8, 8)
    with pytest.raises(ValueError, match="layernorm"):
        build_normalization("layernorm", 8)


def test_learned_group_conv_condensed_matches_after_pruning() -> None:
    torch.manual_seed(0)
    conv = LearnedGroupConv(32, 64, groups=4, condense_factor=4)
    x = torch.randn(3, 32, 8, 8)
    for stage in range(1, 4):
        conv.condense_stage(stage)
        kept = conv.mask.reshape(4, 16, 32)[:, 0, :].sum(dim=1)
        assert kept.tolist() == [32 - stage * 8] * 4
    condensed = conv.condensed()
    assert torch.allclose(condensed(x), conv(x), atol=1e-5)
    # The condensed form computes only the kept quarter of the connections.
    assert condensed.conv.weight.numel() == conv.conv.weight.numel() // 4


def test_group_lasso_drives_pruning_choice() -> None:
    conv = LearnedGroupConv(8, 4, groups=2, condense_factor=4)
    with torch.no_grad():
        conv.conv.weight.fill_(1.0)
        conv.conv.weight[:, :2] = 0.0  # inputs 0 and 1 carry nothing
    conv.condense_stage(1)  # each group drops 8 // 4 = 2 inputs
    assert conv.mask[:, :2].sum() == 0
    assert conv.mask[:, 2:].sum() == 4 * 6
    assert conv.group_lasso().item() == pytest.approx(2 * 6 * (2**0.5))
