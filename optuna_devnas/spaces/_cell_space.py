"""``CellSpace``: DPP-Net's search space of cells, suggested define-by-run through a trial.

The space turns an Optuna trial into an :class:`Architecture` and back. A cell of ``n`` layers is
recorded as the trial parameters ``"<name>.n_layers"`` and ``"<name>.layer_<i>"`` for
``i < n``; the choices at a position never change, so every Optuna sampler can search the space,
and ``DPPSampler`` recognises it from the user attribute ``"devnas:space"`` that ``suggest``
writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import itertools
from typing import TYPE_CHECKING, Any

from optuna_devnas._errors import InvalidArchitectureError
from optuna_devnas.spaces._architecture import (
    DEFAULT_BOTTLENECK,
    DEFAULT_DEPTHS,
    DEFAULT_GROWTH_RATES,
    DEFAULT_STEM_CHANNELS,
    MAX_LAYERS_LIMIT,
    Architecture,
    choices_at,
)

if TYPE_CHECKING:  # optuna stays optional for ``devnas profile`` on a bare board
    import optuna

SPACE_ATTR = "devnas:space"
"""User attribute holding ``CellSpace.to_dict()`` on every trial that used a space."""

ARCHITECTURE_ATTR = "devnas:architecture"
"""User attribute holding the trial's ``Architecture.to_dict()``."""


class CellSpace:
    """DPP-Net's cell space (Dong et al., ECCV 2018, section 3.1): cells of alternating layers.

    Example:

        .. code-block:: python

            space = CellSpace(max_layers=4)

            def objective(trial):
                arch = space.suggest(trial)
                model = arch.build(num_classes=10, input_shape=(1, 8, 8))
                ...

    Args:
        max_layers:
            Longest cell in the space (DPP-Net's last stage). Default 4.
        depths:
            Cells per dense stage. Default (2, 2, 2).
        growth_rates:
            Growth rate of each stage. Default (8, 16, 32).
        stem_channels:
            Width of the stem convolution. Default 16.
        bottleneck:
            Width multiplier of a cell's inner convolutions. Default 4.
        name:
            Prefix of the trial parameters. Default ``"cell"``.
    """

    def __init__(
        self,
        *,
        max_layers: int = 4,
        depths: Sequence[int] = DEFAULT_DEPTHS,
        growth_rates: Sequence[int] = DEFAULT_GROWTH_RATES,
        stem_channels: int = DEFAULT_STEM_CHANNELS,
        bottleneck: int = DEFAULT_BOTTLENECK,
        name: str = "cell",
    ) -> None:
        if not isinstance(max_layers, int) or not 1 <= max_layers <= MAX_LAYERS_LIMIT:
            raise ValueError(
                f"Got max_layers={max_layers!r}, but expected an integer in "
                f"[1, {MAX_LAYERS_LIMIT}]."
            )
        if not name or not isinstance(name, str):
            raise ValueError(f"Got name={name!r}, but expected a non-empty string.")
        self.max_layers = max_layers
        self.name = name
        # Validates the macro settings once, with Architecture's messages.
        self._template = Architecture(
            layers=(choices_at(0)[0],),
            depths=tuple(depths),
            growth_rates=tuple(growth_rates),
            stem_channels=stem_channels,
            bottleneck=bottleneck,
        )

    # -- parameters -------------------------------------------------------------------------
    @property
    def length_param(self) -> str:
        return f"{self.name}.n_layers"

    def layer_param(self, position: int) -> str:
        return f"{self.name}.layer_{position}"

    def suggest(self, trial: optuna.Trial) -> Architecture:
        """Suggest a cell through ``trial`` (define-by-run) and return its architecture."""
        n_layers = trial.suggest_int(self.length_param, 1, self.max_layers)
        layers = tuple(
            trial.suggest_categorical(self.layer_param(i), choices_at(i)) for i in range(n_layers)
        )
        arch = self._template.with_layers(layers)
        trial.set_user_attr(SPACE_ATTR, self.to_dict())
        trial.set_user_attr(ARCHITECTURE_ATTR, arch.to_dict())
        return arch

    def to_params(self, arch: Architecture) -> dict[str, Any]:
        """The trial parameters that ``suggest`` records for ``arch``."""
        self.validate(arch)
        params: dict[str, Any] = {self.length_param: arch.n_layers}
        params.update({self.layer_param(i): name for i, name in enumerate(arch.layers)})
        return params

    def from_params(self, params: dict[str, Any]) -> Architecture:
        """The architecture of a trial's parameters (other parameters are ignored)."""
        if self.length_param not in params:
            raise InvalidArchitectureError(
                f"Got parameters {sorted(params)}, but expected {self.length_param!r} among them."
            )
        n_layers = int(params[self.length_param])
        missing = [
            self.layer_param(i) for i in range(n_layers) if self.layer_param(i) not in params
        ]
        if missing:
            raise InvalidArchitectureError(f"Got parameters without {missing}.")
        return self._template.with_layers([params[self.layer_param(i)] for i in range(n_layers)])

    # -- the space --------------------------------------------------------------------------
    def validate(self, arch: Architecture) -> None:
        """Raise ``InvalidArchitectureError`` unless ``arch`` belongs to this space."""
        if arch.n_layers > self.max_layers:
            raise InvalidArchitectureError(
                f"Got a cell of {arch.n_layers} layers, but this space allows at most "
                f"{self.max_layers}."
            )
        if arch.with_layers(self._template.layers) != self._template:
            raise InvalidArchitectureError(
                f"Got an architecture with other macro settings ({arch.to_dict()}) than this "
                f"space's ({self._template.to_dict()})."
            )

    def architecture(self, layers: Sequence[str]) -> Architecture:
        """The architecture of this space with cell ``layers``."""
        arch = self._template.with_layers(layers)
        self.validate(arch)
        return arch

    def initial(self) -> tuple[Architecture, ...]:
        """DPP-Net's first stage: every one-layer cell."""
        return tuple(self._template.with_layers((name,)) for name in choices_at(0))

    def enumerate(self, n_layers: int) -> Iterator[Architecture]:
        """Every architecture whose cell has ``n_layers`` layers."""
        if not 1 <= n_layers <= self.max_layers:
            raise ValueError(f"Got n_layers={n_layers}, but expected 1..{self.max_layers}.")
        for layers in itertools.product(*(choices_at(i) for i in range(n_layers))):
            yield self._template.with_layers(layers)

    def size(self) -> int:
        """Number of architectures in the space (all lengths)."""
        total, count = 0, 1
        for position in range(self.max_layers):
            count *= len(choices_at(position))
            total += count
        return total

    def to_dict(self) -> dict[str, Any]:
        template = self._template.to_dict()
        del template["layers"]
        return {"type": "CellSpace", "max_layers": self.max_layers, "name": self.name, **template}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CellSpace:
        data = dict(data)
        if data.pop("type", "CellSpace") != "CellSpace":
            raise ValueError(f"Got space type {data.get('type')!r}, but expected 'CellSpace'.")
        return cls(**data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CellSpace) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_dict().items())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "type")
        return f"CellSpace({args})"
