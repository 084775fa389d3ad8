"""``SearchConfig``: everything that defines a ``devnas search``, so a run can be repeated.

A configuration comes from defaults, then a JSON or TOML file, then command-line flags. It is
stored in the study's user attributes, which is how ``devnas worker`` joins a study with exactly
the same objective. Unknown keys, wrong types and contradictory values are refused with one
clear message. Two configurations are the same search when they agree on everything but
:data:`LOCATION_KEYS` (where the study is reached, not what it searches).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
import json
from pathlib import Path
import sys
import types
from typing import Any, Union, get_args, get_origin, get_type_hints

from optuna_devnas._errors import DevnasError

CONFIG_ATTR = "devnas:config"
"""Study user attribute holding the search configuration."""

OBJECTIVE_NAMES = ("val_error", "val_accuracy", "latency_ms", "params", "flops", "peak_memory")
SAMPLER_NAMES = ("dpp", "tpe", "nsga2", "random")
CONFIG_SUFFIXES = (".json", ".toml")

LOCATION_KEYS = ("storage",)
"""Keys that say where a study is reached, left out when two configurations are compared."""

# Objectives that measure the same quantity: asking for two of them would give the sampler one
# objective twice.
_SAME_QUANTITY = [{"val_error", "val_accuracy"}]

HELP = {
    "study": "study name",
    "storage": "Optuna storage URL (postgresql://... for many machines)",
    "data": "digits, digits32, fashion_mnist, fashion_mnist32, cifar10 or cifar100",
    "data_root": "folder of CIFAR or Fashion-MNIST (never downloaded)",
    "objectives": f"comma-separated, among {', '.join(OBJECTIVE_NAMES)}",
    "objective": "a user objective file.py:function(trial, space, data) instead of --objectives",
    "directions": "minimize/maximize per value the user objective returns, comma-separated",
    "epochs": "training epochs per network",
    "lr": "learning rate of the training",
    "trials": "trials the study runs to an end, all workers together (see docs/cli.md)",
    "sampler": f"one of {', '.join(SAMPLER_NAMES)}",
    "seed": "seed of the data split, training and sampler",
    "max_layers": "longest cell of the CellSpace",
    "depths": "cells per dense stage, comma-separated",
    "growth_rates": "growth rate per dense stage, comma-separated",
    "stem_channels": "channels of the stem convolution",
    "k": "networks trained per stage of the dpp sampler",
    "device": "torch device where networks train and latency is measured",
    "latency_threads": "CPU threads of latency measurements",
    "latency_table": "JSON table from 'devnas profile': latency_ms is predicted from it",
    "artifacts": "folder of trained weights (default: devnas-artifacts where the study is "
    "created; stored as an absolute path)",
    "tracking_uri": "MLflow tracking URI (empty: MLflow's default)",
    "heartbeat_interval": "seconds between a running trial's heartbeats",
    "grace_period": "seconds without heartbeat before a trial is failed and retried",
    "max_retry": "retries of a trial whose worker died",
    "max_failures": "trials failing in a row before the search stops",
}
"""What each key means (``devnas search --help``, ``docs/cli.md``)."""


class ConfigError(DevnasError, ValueError):
    """A configuration file or value is not valid."""


@dataclass
class SearchConfig:
    """What ``devnas search`` runs (every field is also a command-line flag).

    Every key, its default and its meaning are listed in :data:`HELP` and ``docs/cli.md``.
    ``objectives`` are names among :data:`OBJECTIVE_NAMES`; ``objective`` is a user-written
    ``file.py:function`` taking ``(trial, space, data)`` (then ``directions`` is needed).
    """

    study: str = "devnas"
    storage: str = "sqlite:///devnas.db"
    data: str = "digits"
    data_root: str | None = None
    objectives: list[str] = field(default_factory=lambda: ["val_error", "latency_ms", "params"])
    objective: str | None = None
    directions: list[str] | None = None
    epochs: int = 3
    lr: float = 0.1
    trials: int = 30
    sampler: str = "dpp"
    seed: int = 0
    max_layers: int = 4
    depths: list[int] = field(default_factory=lambda: [2, 2, 2])
    growth_rates: list[int] = field(default_factory=lambda: [8, 16, 32])
    stem_channels: int = 16
    k: int = 8
    device: str = "cpu"
    latency_threads: int = 1
    latency_table: str | None = None
    artifacts: str | None = None
    tracking_uri: str | None = None
    heartbeat_interval: int = 10
    grace_period: int = 30
    max_retry: int = 3
    max_failures: int = 5

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        hints = get_type_hints(type(self))
        for item in fields(self):
            _check_type(item.name, getattr(self, item.name), hints[item.name])
        for name in ("study", "storage"):
            if not getattr(self, name).strip():
                raise ConfigError(f"Got {name}={getattr(self, name)!r}, but expected a name.")
        self._validate_objectives()
        if self.sampler not in SAMPLER_NAMES:
            raise ConfigError(
                f"Got sampler={self.sampler!r}, but expected one of {SAMPLER_NAMES}."
            )
        for name in ("epochs", "trials", "max_layers", "latency_threads", "heartbeat_interval"):
            _check_at_least(name, getattr(self, name), 1)
        _check_at_least("k", self.k, 1)
        _check_at_least("max_failures", self.max_failures, 1)
        _check_at_least("max_retry", self.max_retry, 0)
        if not self.lr > 0:
            raise ConfigError(f"Got lr={self.lr!r}, but expected a positive number.")
        if self.grace_period <= self.heartbeat_interval:
            raise ConfigError(
                f"Got grace_period={self.grace_period}, but it must exceed "
                f"heartbeat_interval={self.heartbeat_interval}."
            )

    def _validate_objectives(self) -> None:
        for name in self.objectives:
            if name not in OBJECTIVE_NAMES:
                raise ConfigError(
                    f"Got objective {name!r}, but expected names among {OBJECTIVE_NAMES}."
                )
        twice = sorted({name for name in self.objectives if self.objectives.count(name) > 1})
        twice += [
            " and ".join(sorted(same)) for same in _SAME_QUANTITY if same <= set(self.objectives)
        ]
        if twice:
            raise ConfigError(
                f"Got objectives={self.objectives}, but {twice[0]} would be the same objective "
                "twice; list each quantity once."
            )
        if not self.objectives and self.objective is None:
            raise ConfigError("Got no objectives, but a search needs at least one.")
        if self.objective is not None:
            if ":" not in self.objective:
                raise ConfigError(
                    f"Got objective={self.objective!r}, but expected 'file.py:function'."
                )
            if not self.directions or any(
                d not in ("minimize", "maximize") for d in self.directions
            ):
                raise ConfigError(
                    f"Got directions={self.directions!r}, but a custom objective needs a list "
                    "of 'minimize'/'maximize', one per value it returns."
                )
        if self.latency_table is not None and (
            self.objective is not None or "latency_ms" not in self.objectives
        ):
            raise ConfigError(
                f"Got latency_table={self.latency_table!r}, but it predicts the latency_ms "
                "objective, which this search does not have."
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "configuration") -> SearchConfig:
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {unknown}; known keys are {sorted(known)}."
            )
        try:
            return cls(**data)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> SearchConfig:
        path = Path(path)
        if path.suffix not in CONFIG_SUFFIXES:
            raise ConfigError(
                f"Got configuration file {str(path)!r}, but expected a file ending in "
                f"{' or '.join(CONFIG_SUFFIXES)} (JSON or TOML)."
            )
        if not path.is_file():
            raise ConfigError(f"Configuration file {str(path)!r} does not exist.")
        text = path.read_text()
        try:
            if path.suffix == ".toml":
                if sys.version_info >= (3, 11):
                    import tomllib
                else:  # pragma: no cover
                    import tomli as tomllib
                data = tomllib.loads(text)
            else:
                data = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"{path}: not valid {path.suffix[1:] or 'JSON'}: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a table of keys, got {type(data).__name__}.")
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def search_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without :data:`LOCATION_KEYS`: what defines the search."""
        return {k: v for k, v in self.to_dict().items() if k not in LOCATION_KEYS}

    @property
    def trains(self) -> bool:
        """Whether trials train networks (and save their weights under ``artifacts``)."""
        return self.objective is None and bool(
            {"val_error", "val_accuracy"} & set(self.objectives)
        )

    @property
    def metric_names(self) -> list[str]:
        if self.objective is not None:
            assert self.directions is not None
            return [f"value_{i}" for i in range(len(self.directions))]
        return list(self.objectives)


def _check_at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"Got {name}={value!r}, but expected >= {low}.")


def _check_type(name: str, value: Any, hint: Any) -> None:
    """Raise ConfigError unless ``value`` has type ``hint`` (the few types SearchConfig uses)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return
        hint = next(option for option in options if option is not type(None))
        origin = get_origin(hint)
    if origin is list:
        (inner,) = get_args(hint)
        if isinstance(value, list) and all(_is(item, inner) for item in value):
            return
        expected = f"a list of {inner.__name__}"
    else:
        if _is(value, hint):
            return
        expected = hint.__name__
    raise ConfigError(f"Got {name}={value!r}, but expected {expected}.")


def _is(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)
