"""The CondenseNet-style densely connected network a DPP-Net cell is stacked into.

Each stage stacks ``depth`` cells; every cell sees the concatenation of the stage input and all
earlier cells' outputs and adds ``growth_rate`` channels (Huang et al., DenseNet; CondenseNet
section 3.2 for growth rates that increase from stage to stage and average-pool transitions).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
from torch import nn

from optuna_devnas._errors import InputShapeError
from optuna_devnas.spaces._ops import (
    LearnedGroupConv,
    build_convolution,
    build_normalization,
    is_convolution,
)

if TYPE_CHECKING:
    from optuna_devnas.spaces._architecture import Architecture


class Cell(nn.Sequential):
    """One cell: the architecture's layers mapping ``in_channels`` to ``growth_rate``."""

    def __init__(
        self, layers: tuple[str, ...], in_channels: int, growth_rate: int, bottleneck: int
    ) -> None:
        n_convolutions = sum(is_convolution(name) for name in layers)
        modules: list[nn.Module] = []
        channels = in_channels
        seen = 0
        for name in layers:
            if is_convolution(name):
                seen += 1
                out = growth_rate if seen == n_convolutions else bottleneck * growth_rate
                modules.append(build_convolution(name, channels, out))
                channels = out
            else:
                modules.append(build_normalization(name, channels))
        super().__init__(*modules)


class DenseStage(nn.Module):
    def __init__(self, arch: Architecture, in_channels: int, depth: int, growth: int) -> None:
        super().__init__()
        self.cells = nn.ModuleList(
            Cell(arch.layers, in_channels + i * growth, growth, arch.bottleneck)
            for i in range(depth)
        )
        self.out_channels = in_channels + depth * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for cell in self.cells:
            x = torch.cat([x, cell(x)], dim=1)
        return x


class DenseCellNetwork(nn.Module):
    """A classifier built from an :class:`Architecture`: stem, dense stages, pooled head."""

    def __init__(
        self, arch: Architecture, *, num_classes: int, input_shape: tuple[int, ...]
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"Got num_classes={num_classes}, but expected at least 2.")
        if len(input_shape) != 3 or any(int(s) < 1 for s in input_shape):
            raise InputShapeError(
                f"Got input_shape={input_shape}, but expected (channels, height, width) with "
                "positive sizes, e.g. (3, 32, 32)."
            )
        n_pools = len(arch.depths) - 1
        channels, height, width = (int(s) for s in input_shape)
        if min(height, width) < 2**n_pools:
            raise InputShapeError(
                f"Got input_shape={input_shape}, but {len(arch.depths)} stages pool "
                f"{n_pools} times and need images of at least {2**n_pools}x{2**n_pools}."
            )
        self.architecture = arch
        self.input_shape = (channels, height, width)
        self.stem = nn.Conv2d(channels, arch.stem_channels, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        width_now = arch.stem_channels
        for index, (depth, growth) in enumerate(zip(arch.depths, arch.growth_rates)):
            if index > 0:
                stages.append(nn.AvgPool2d(2))
            stage = DenseStage(arch, width_now, depth, growth)
            stages.append(stage)
            width_now = stage.out_channels
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(
            nn.BatchNorm2d(width_now),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width_now, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tracing = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        if not tracing and (x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape):
            raise InputShapeError(
                f"Got an input of shape {tuple(x.shape)}, but this network was built for "
                f"(batch, {', '.join(map(str, self.input_shape))})."
            )
        return self.head(self.stages(self.stem(x)))


def learned_group_convs(model: nn.Module) -> list[LearnedGroupConv]:
    return [m for m in model.modules() if isinstance(m, LearnedGroupConv)]


def group_lasso_penalty(model: nn.Module) -> torch.Tensor:
    """CondenseNet's group-lasso penalty summed over the model's learned group convolutions."""
    convs = learned_group_convs(model)
    if not convs:
        return torch.zeros(())
    return torch.stack([conv.group_lasso() for conv in convs]).sum()


def condense_stage(model: nn.Module, stage: int) -> None:
    """Apply condensation stage ``stage`` to every learned group convolution of ``model``."""
    for conv in learned_group_convs(model):
        conv.condense_stage(stage)


def condense(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in inference form, as deployed and as latency is measured.

    Learned group convolutions not yet fully pruned get their last condensation stage first
    (by the current weights' importance), then are replaced by their condensed modules. The
    input model is left untouched.
    """
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, LearnedGroupConv):
                child.condense_stage(child.condense_factor - 1)
                setattr(parent, child_name, child.condensed())
    return model
