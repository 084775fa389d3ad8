"""``Architecture``: one DPP-Net network as a plain, hashable, JSON-serializable value.

The seam between the parts of the pipeline (STYLE "plain values at the seams"): samplers,
objectives and trackers exchange architectures, never modules or trials. An architecture is a
cell (layer names alternating convolution and normalization, starting with a convolution) plus
the macro settings of the densely connected network the cell is stacked into.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import json
from typing import Any

from optuna_devnas._errors import InvalidArchitectureError
from optuna_devnas.spaces._ops import CONVOLUTIONS, IDENTITY, NORMALIZATIONS

DEFAULT_DEPTHS: tuple[int, ...] = (2, 2, 2)
DEFAULT_GROWTH_RATES: tuple[int, ...] = (8, 16, 32)
DEFAULT_STEM_CHANNELS = 16
DEFAULT_BOTTLENECK = 4
MAX_LAYERS_LIMIT = 12
"""Hard upper bound on cell length: DPP-Net's cells have at most a handful of layers."""


def choices_at(position: int) -> tuple[str, ...]:
    """Layer choices at ``position`` of a cell: convolutions at even, normalizations at odd."""
    return CONVOLUTIONS if position % 2 == 0 else NORMALIZATIONS


@dataclass(frozen=True)
class Architecture:
    """A DPP-Net network: a cell and the dense macro-structure it is stacked into.

    Args:
        layers:
            The cell's layer names, alternating convolution (positions 0, 2, ...) and
            normalization (positions 1, 3, ...); see ``spaces.CONVOLUTIONS`` and
            ``spaces.NORMALIZATIONS``.
        depths:
            Cells per dense stage. Stages are joined by 2x2 average pooling. Default (2, 2, 2).
        growth_rates:
            Channels each cell adds in each stage (CondenseNet grows them stage by stage).
            Default (8, 16, 32).
        stem_channels:
            Output channels of the 3x3 stem convolution. Default 16.
        bottleneck:
            Inner convolutions of a cell output ``bottleneck * growth_rate`` channels; the last
            convolution outputs the growth rate. Default 4.
    """

    layers: tuple[str, ...]
    depths: tuple[int, ...] = DEFAULT_DEPTHS
    growth_rates: tuple[int, ...] = DEFAULT_GROWTH_RATES
    stem_channels: int = DEFAULT_STEM_CHANNELS
    bottleneck: int = DEFAULT_BOTTLENECK
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        # Accept lists (e.g. from JSON) but store tuples so the value stays hashable.
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "growth_rates", tuple(int(g) for g in self.growth_rates))
        self._validate()
        key = (self.layers, self.depths, self.growth_rates, self.stem_channels, self.bottleneck)
        object.__setattr__(self, "_hash", hash(key))

    def __hash__(self) -> int:
        return self._hash

    def _validate(self) -> None:
        if len(self.layers) == 0:
            raise InvalidArchitectureError("Got an empty cell, but a cell needs at least 1 layer.")
        if len(self.layers) > MAX_LAYERS_LIMIT:
            raise InvalidArchitectureError(
                f"Got a cell of {len(self.layers)} layers, but at most {MAX_LAYERS_LIMIT} are "
                "supported."
            )
        for position, name in enumerate(self.layers):
            allowed = choices_at(position)
            if name not in allowed:
                kind = "convolution" if position % 2 == 0 else "normalization"
                raise InvalidArchitectureError(
                    f"Got layer {name!r} at position {position}, but position {position} takes "
                    f"a {kind}, one of {allowed}."
                )
        if len(self.depths) == 0 or any(d < 1 for d in self.depths):
            raise InvalidArchitectureError(
                f"Got depths={self.depths}, but expected one or more positive integers."
            )
        if len(self.growth_rates) != len(self.depths) or any(g < 1 for g in self.growth_rates):
            raise InvalidArchitectureError(
                f"Got growth_rates={self.growth_rates}, but expected {len(self.depths)} positive "
                "integers (one per stage of depths)."
            )
        if self.stem_channels < 1 or self.bottleneck < 1:
            raise InvalidArchitectureError(
                f"Got stem_channels={self.stem_channels} and bottleneck={self.bottleneck}, but "
                "expected positive integers."
            )

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def children(self) -> tuple[Architecture, ...]:
        """The architectures one appended layer away: 6 when a convolution comes next, else 3."""
        return tuple(self.with_layers((*self.layers, name)) for name in choices_at(self.n_layers))

    def canonical(self) -> Architecture:
        """The shortest architecture that builds the same network as this one.

        A trailing ``identity`` normalization computes nothing and has no parameters, so
        ``conv1x1-identity`` builds, initialises and trains exactly like ``conv1x1``: a search
        should train such a pair once. An inner ``identity`` cannot be dropped (the layers after
        it would change kind), so it stays.
        """
        if self.n_layers > 1 and self.layers[-1] == IDENTITY:
            return self.with_layers(self.layers[:-1])
        return self

    def with_layers(self, layers: Sequence[str]) -> Architecture:
        """The same network with another cell."""
        return Architecture(
            layers=tuple(layers),
            depths=self.depths,
            growth_rates=self.growth_rates,
            stem_channels=self.stem_channels,
            bottleneck=self.bottleneck,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "depths": list(self.depths),
            "growth_rates": list(self.growth_rates),
            "stem_channels": self.stem_channels,
            "bottleneck": self.bottleneck,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        unknown = set(data) - {"layers", "depths", "growth_rates", "stem_channels", "bottleneck"}
        if unknown or "layers" not in data:
            raise InvalidArchitectureError(
                f"Got architecture keys {sorted(data)}, but expected 'layers' and optionally "
                "'depths', 'growth_rates', 'stem_channels', 'bottleneck'."
            )
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        return cls.from_dict(json.loads(text))

    def __str__(self) -> str:
        return "-".join(self.layers)

    def build(self, num_classes: int, input_shape: Sequence[int] = (3, 32, 32)) -> Any:
        """Build the network as an ``nn.Module`` (a :class:`DenseCellNetwork`).

        Args:
            num_classes:
                Number of output classes.
            input_shape:
                ``(channels, height, width)`` of one input image, e.g. ``(1, 8, 8)`` for digits
                or ``(3, 32, 32)`` for CIFAR. Default (3, 32, 32).
        """
        from optuna_devnas.spaces._network import DenseCellNetwork

        return DenseCellNetwork(self, num_classes=num_classes, input_shape=tuple(input_shape))
