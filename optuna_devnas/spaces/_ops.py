"""The layer choices of DPP-Net's cell and how each is built.

A cell alternates convolution and normalization layers (DESIGN section 3). This module maps
each choice's name to an ``nn.Module`` and holds CondenseNet's learned group convolution
(Huang et al., CVPR 2018, section 3.1), which no library ships: it trains as a masked dense
1x1 convolution with a group-lasso penalty, is pruned in stages, and is condensed at
inference into an index gather plus an ordinary grouped convolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

CONVOLUTIONS: tuple[str, ...] = (
    "conv1x1",
    "conv3x3",
    "group_conv1x1",
    "group_conv3x3",
    "learned_group_conv1x1",
    "depthwise_conv3x3",
)
"""Convolution choices, in a fixed order (the order of a layer's categorical parameter)."""

NORMALIZATIONS: tuple[str, ...] = ("bn_relu", "bn", "identity")
"""Normalization choices, in a fixed order."""

IDENTITY = "identity"
"""The normalization choice that computes nothing (see ``Architecture.canonical``)."""

GROUPS = 4
"""Groups of the (learned) group convolutions, as in CondenseNet (G = 4)."""

CONDENSE_FACTOR = 4
"""CondenseNet's condensation factor C: each group finally keeps 1/C of the input channels."""


def is_convolution(name: str) -> bool:
    return name in CONVOLUTIONS


def _groups(in_channels: int, out_channels: int) -> int:
    # Largest group count <= GROUPS that divides both channel counts; channel counts in our
    # networks are multiples of the growth rate, so this is GROUPS except for tiny widths.
    return math.gcd(GROUPS, math.gcd(in_channels, out_channels))


class LearnedGroupConv(nn.Module):
    """CondenseNet's 1x1 learned group convolution, in its training-time form.

    Output channels are split into ``groups`` groups; each group learns which input channels it
    keeps. ``group_lasso()`` is the penalty that drives unimportant connections to zero;
    ``condense_stage(s)`` prunes so that each group keeps ``in - s * (in // C)`` inputs; after
    stage ``C - 1`` the module can be turned into :class:`CondensedGroupConv` with
    ``condensed()``, which computes the same outputs.
    """

    mask: torch.Tensor  # (out_channels, in_channels), 1 where a connection is kept

    def __init__(
        self, in_channels: int, out_channels: int, *, groups: int, condense_factor: int
    ) -> None:
        super().__init__()
        if out_channels % groups != 0:
            raise ValueError(f"out_channels={out_channels} is not divisible by groups={groups}.")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.groups = groups
        self.condense_factor = condense_factor
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.register_buffer("mask", torch.ones(out_channels, in_channels))
        self.stage = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.conv.weight * self.mask[:, :, None, None]
        return F.conv2d(x, weight)

    def _group_weight(self) -> torch.Tensor:
        # (groups, out_per_group, in)
        weight = self.conv.weight[:, :, 0, 0] * self.mask
        return weight.reshape(self.groups, self.out_channels // self.groups, self.in_channels)

    def group_lasso(self) -> torch.Tensor:
        """Sum over groups and input channels of the L2 norm of the group's weights."""
        return self._group_weight().pow(2).sum(dim=1).clamp_min(1e-12).sqrt().sum()

    def kept_inputs(self, stage: int) -> int:
        return self.in_channels - stage * (self.in_channels // self.condense_factor)

    @torch.no_grad()
    def condense_stage(self, stage: int) -> None:
        """Prune each group down to ``kept_inputs(stage)`` input channels (by L1 importance)."""
        if not 0 <= stage < self.condense_factor:
            raise ValueError(f"stage={stage} is outside [0, {self.condense_factor - 1}].")
        if stage <= self.stage:
            return
        keep = self.kept_inputs(stage)
        importance = self._group_weight().abs().sum(dim=1)  # (groups, in)
        group_mask = self.mask.reshape(self.groups, -1, self.in_channels)[:, 0, :]
        importance = importance.masked_fill(group_mask == 0, -1.0)
        # Ties broken by channel index so pruning is deterministic.
        order = torch.argsort(importance, dim=1, descending=True, stable=True)
        new_group_mask = torch.zeros_like(group_mask)
        new_group_mask.scatter_(1, order[:, :keep], 1.0)
        out_per_group = self.out_channels // self.groups
        self.mask.copy_(new_group_mask.repeat_interleave(out_per_group, dim=0))
        self.stage = stage

    def condensed(self) -> CondensedGroupConv:
        """The inference form: same outputs, only the kept connections computed."""
        group_mask = self.mask.reshape(self.groups, -1, self.in_channels)[:, 0, :]
        counts = group_mask.sum(dim=1)
        if not bool((counts == counts[0]).all()):
            raise RuntimeError("Groups keep different input counts; prune with condense_stage.")
        keep = int(counts[0].item())
        index = torch.stack([torch.nonzero(row).flatten() for row in group_mask])  # (groups, keep)
        out_per_group = self.out_channels // self.groups
        weight = self.conv.weight[:, :, 0, 0]  # (out, in)
        blocks = [
            weight[g * out_per_group : (g + 1) * out_per_group].index_select(1, index[g])
            for g in range(self.groups)
        ]
        module = CondensedGroupConv(
            index.flatten(), self.out_channels, groups=self.groups, kept_per_group=keep
        )
        module.conv.weight.data.copy_(torch.cat(blocks, dim=0)[:, :, None, None])
        return module


class CondensedGroupConv(nn.Module):
    """Inference form of :class:`LearnedGroupConv`: gather the kept inputs, grouped 1x1 conv."""

    index: torch.Tensor  # (groups * kept_per_group,) input channels, group by group

    def __init__(
        self, index: torch.Tensor, out_channels: int, *, groups: int, kept_per_group: int
    ) -> None:
        super().__init__()
        self.register_buffer("index", index.clone())
        self.conv = nn.Conv2d(groups * kept_per_group, out_channels, 1, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.index_select(1, self.index))


def build_convolution(name: str, in_channels: int, out_channels: int) -> nn.Module:
    """The module for convolution choice ``name`` mapping ``in_channels`` to ``out_channels``."""
    if name == "conv1x1":
        return nn.Conv2d(in_channels, out_channels, 1, bias=False)
    if name == "conv3x3":
        return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
    if name == "group_conv1x1":
        groups = _groups(in_channels, out_channels)
        return nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False)
    if name == "group_conv3x3":
        groups = _groups(in_channels, out_channels)
        return nn.Conv2d(in_channels, out_channels, 3, padding=1, groups=groups, bias=False)
    if name == "learned_group_conv1x1":
        return LearnedGroupConv(
            in_channels,
            out_channels,
            groups=math.gcd(GROUPS, out_channels),
            condense_factor=CONDENSE_FACTOR,
        )
    if name == "depthwise_conv3x3":
        # Depthwise when the widths agree; when a cell changes width (dense input -> growth
        # rate), one group per output channel's share: groups = gcd(in, out).
        groups = math.gcd(in_channels, out_channels)
        return nn.Conv2d(in_channels, out_channels, 3, padding=1, groups=groups, bias=False)
    raise ValueError(f"Got convolution {name!r}, but expected one of {CONVOLUTIONS}.")


def build_normalization(name: str, channels: int) -> nn.Module:
    """The module for normalization choice ``name`` on ``channels`` channels."""
    if name == "bn_relu":
        return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
    if name == "bn":
        return nn.BatchNorm2d(channels)
    if name == IDENTITY:
        return nn.Identity()
    raise ValueError(f"Got normalization {name!r}, but expected one of {NORMALIZATIONS}.")
