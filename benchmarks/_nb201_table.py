"""NAS-Bench-201 as a multi-objective Optuna problem: table look-up, true front, hypervolume gap.

The table (``../shared/data/nb201/nb201_joined.csv.gz``, see its README) holds every one of the
15,625 cells of NAS-Bench-201's space with its test accuracy on three data sets and its latency
on many devices. An objective that suggests the six edges of the cell and looks both values up
costs microseconds, and the true Pareto front is known exactly, so a search's hypervolume gap
(``../shared/DESIGN.md`` section 9) can be measured over many seeds. The objectives are test
error and device latency, and optionally the parameter count (all minimized); latency and
parameter count are known from a trial's parameters, so a sampler may take them as cheap
objectives (:attr:`NB201Problem.cheap`).

Architectures are mapped through ``arch_str`` (never through ``nb201_index``: the index is not a
base-5 number).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import functools
from pathlib import Path
from typing import Any

import numpy as np
import optuna

OPERATIONS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# The six edges (source node, target node) in the order their operations appear in arch_str.
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
PARAM_NAMES = tuple(f"edge_{source}_{target}" for source, target in EDGES)
ACCURACY_COLUMNS = {
    "cifar10": "acc_c10_test",
    "cifar100": "acc_c100_test",
    "imagenet16-120": "acc_in16_test",
}
PARAMS_COLUMNS = {
    "cifar10": "params_c10",
    "cifar100": "params_c100",
    "imagenet16-120": "params_in16",
}
OBJECTIVES = ("error", "latency", "params")
"""The objectives a problem may have; ``error`` first, the others cheap."""
REFERENCE_POINT = 1.1
DEFAULT_TABLE = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "nb201"
    / "nb201_joined.csv.gz"
)


def arch_str(operations: Sequence[str]) -> str:
    """NAS-Bench-201's string of a cell from its six operations, in :data:`EDGES` order."""
    if len(operations) != len(EDGES):
        raise ValueError(f"Got {len(operations)} operations, but expected {len(EDGES)}.")
    nodes = []
    for target in (1, 2, 3):
        ops = [
            f"{op}~{source}"
            for (source, to), op in zip(EDGES, operations, strict=True)
            if to == target
        ]
        nodes.append("|" + "|".join(ops) + "|")
    return "+".join(nodes)


def parse_arch_str(text: str) -> tuple[str, ...]:
    """The six operations of ``text``, in :data:`EDGES` order (inverse of :func:`arch_str`)."""
    operations: list[str] = []
    for target, node in enumerate(text.split("+"), start=1):
        for token in node.strip("|").split("|"):
            op, source = token.split("~")
            if (int(source), target) != EDGES[len(operations)] or op not in OPERATIONS:
                raise ValueError(f"Got arch_str={text!r}, but expected NAS-Bench-201's format.")
            operations.append(op)
    if len(operations) != len(EDGES):
        raise ValueError(f"Got arch_str={text!r}, but expected {len(EDGES)} edges.")
    return tuple(operations)


def latency_column(device: str, columns: Sequence[str]) -> str:
    """The table column of ``device``: a ``help_lat_ms_<device>`` suffix or a full column name."""
    for candidate in (f"help_lat_ms_{device}", device):
        if candidate in columns and "lat_ms" in candidate:
            return candidate
    known = sorted(c.removeprefix("help_lat_ms_") for c in columns if "lat_ms" in c)
    raise ValueError(f"Got device={device!r}, but expected one of {known}.")


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Which rows of ``values`` (n, m), all minimized, no other row dominates (BoTorch's rule)."""
    from botorch.utils.multi_objective.pareto import is_non_dominated
    import torch

    tensor = torch.as_tensor(values, dtype=torch.float64)
    return is_non_dominated(tensor, maximize=False, deduplicate=True).numpy()


def normalized_hypervolume(
    values: np.ndarray, lower: np.ndarray, upper: np.ndarray, reference: float = REFERENCE_POINT
) -> float:
    """Hypervolume of minimized ``values`` (n, m) after min-max scaling by ``lower``/``upper``.

    Every objective is scaled to ``(v - lower) / (upper - lower)``; the reference point is
    ``reference`` in every coordinate; points beyond it add nothing. Uses BoTorch's public
    ``Hypervolume`` (Optuna 5 keeps its own in the private ``optuna._hypervolume``).
    """
    from botorch.utils.multi_objective.hypervolume import Hypervolume
    import torch

    values = np.asarray(values, dtype=np.float64).reshape(-1, len(lower))
    if len(values) == 0:
        return 0.0
    scaled = (values - lower) / (upper - lower)  # (n, m), the whole table maps into [0, 1]
    front = scaled[pareto_mask(scaled)]
    # BoTorch maximizes: negate the points and the reference point.
    reference_point = torch.full((scaled.shape[1],), -reference, dtype=torch.float64)
    return float(Hypervolume(reference_point).compute(-torch.as_tensor(front)))


def check_objectives(objectives: Sequence[str]) -> tuple[str, ...]:
    """``objectives`` as a tuple: ``error`` first, then distinct ones of :data:`OBJECTIVES`."""
    objectives = tuple(objectives)
    if (
        len(objectives) < 2
        or objectives[0] != "error"
        or len(set(objectives)) != len(objectives)
        or not set(objectives) <= set(OBJECTIVES)
    ):
        raise ValueError(
            f"Got objectives={objectives!r}, but expected 'error' and then one or more "
            f"distinct ones of {OBJECTIVES[1:]}."
        )
    return objectives


def costs_title(objectives: Sequence[str], latency_column: str) -> str:
    """The cost objectives of a problem as a title reads them, e.g. ``latency (...) vs ...``."""
    names = {"latency": f"latency ({latency_column})", "params": "parameters"}
    return " vs ".join(names[o] for o in objectives[1:])


def hypervolume_gap(
    values: np.ndarray, lower: np.ndarray, upper: np.ndarray, front_hypervolume: float
) -> float:
    """``100 * (1 - HV(values) / HV(true front))`` in the table-wide normalization."""
    return 100.0 * (1.0 - normalized_hypervolume(values, lower, upper) / front_hypervolume)


def front_of(
    names: Sequence[str], points: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], float]:
    """Table-wide ``lower``, ``upper``, the true front's names and its normalized hypervolume."""
    if not np.isfinite(points).all():
        raise ValueError("Got missing or infinite values in the table's objective columns.")
    lower, upper = points.min(axis=0), points.max(axis=0)
    mask = pareto_mask(points)
    front = tuple(n for n, m in zip(names, mask, strict=True) if m)
    return lower, upper, front, normalized_hypervolume(points[mask], lower, upper)


@dataclass(frozen=True)
class NB201Problem:
    """Minimize (test error in %, latency in ms[, parameters]) of a NAS-Bench-201 cell.

    Build with :meth:`load`. ``values`` maps every ``arch_str`` to its objective values, in the
    order of ``objectives``.
    """

    dataset: str
    device: str
    latency_column: str
    values: Mapping[str, tuple[float, ...]]
    lower: np.ndarray  # (m,) minimum of each objective over the whole table
    upper: np.ndarray  # (m,) maximum of each objective over the whole table
    front: tuple[str, ...]  # arch_str of the true Pareto front
    front_hypervolume: float
    objectives: tuple[str, ...] = ("error", "latency")

    @classmethod
    def load(
        cls,
        path: str | Path = DEFAULT_TABLE,
        *,
        dataset: str = "cifar10",
        device: str = "raspi4",
        objectives: Sequence[str] = ("error", "latency"),
    ) -> NB201Problem:
        import pandas as pd

        if dataset not in ACCURACY_COLUMNS:
            raise ValueError(
                f"Got dataset={dataset!r}, but expected one of {list(ACCURACY_COLUMNS)}."
            )
        objectives = check_objectives(objectives)
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Got path={str(path)!r}, but no such file exists.")
        table = pd.read_csv(path)
        column = latency_column(device, list(table.columns))
        columns = {
            "error": 100.0 - table[ACCURACY_COLUMNS[dataset]].to_numpy(dtype=np.float64),
            "latency": table[column].to_numpy(dtype=np.float64),
            "params": table[PARAMS_COLUMNS[dataset]].to_numpy(dtype=np.float64),
        }
        points = np.stack([columns[o] for o in objectives], axis=1)  # (15625, m)
        names = [str(s) for s in table["arch_str"]]
        for name in names[:1]:
            parse_arch_str(name)  # fail early on a table in another format
        lower, upper, front, front_hypervolume = front_of(names, points)
        return cls(
            dataset=dataset,
            device=device,
            latency_column=column,
            values={n: tuple(float(v) for v in p) for n, p in zip(names, points, strict=True)},
            lower=lower,
            upper=upper,
            front=front,
            front_hypervolume=front_hypervolume,
            objectives=objectives,
        )

    @property
    def title(self) -> str:
        costs = costs_title(self.objectives, self.latency_column)
        return f"{self.dataset}: error ({ACCURACY_COLUMNS[self.dataset]}) vs {costs}"

    @property
    def cheap(self) -> dict[int, Any]:
        """``{objective index: fn(params)}`` for the objectives known without training."""
        functions = {"latency": self.latency, "params": self.params}
        return {i: functions[o] for i, o in enumerate(self.objectives) if o in functions}

    @property
    def sampler_options(self) -> dict[str, Any]:
        """Keyword arguments ``DPPSampler`` needs for this problem (none: a generic space)."""
        return {}

    @staticmethod
    def arch_of(params: Mapping[str, Any]) -> str:
        """The ``arch_str`` of a trial's parameters."""
        return arch_str([str(params[name]) for name in PARAM_NAMES])

    def suggest(self, trial: optuna.Trial) -> str:
        """Suggest the six edges (define-by-run) and return the cell's ``arch_str``."""
        return arch_str([trial.suggest_categorical(name, OPERATIONS) for name in PARAM_NAMES])

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        return self.values[self.suggest(trial)]

    def latency(self, params: Mapping[str, Any]) -> float:
        """The latency objective from parameters alone: the cheap objective of a sampler.

        A sampler may call it for thousands of candidates per trial, so it looks the six
        operations up directly instead of building the ``arch_str``.
        """
        column = self.objectives.index("latency")
        return self._by_operations[tuple(params[name] for name in PARAM_NAMES)][column]

    def params(self, params: Mapping[str, Any]) -> float:
        """The parameter-count objective from parameters alone (needs ``"params"``)."""
        column = self.objectives.index("params")
        return self._by_operations[tuple(params[name] for name in PARAM_NAMES)][column]

    @functools.cached_property
    def _by_operations(self) -> dict[tuple[str, ...], tuple[float, ...]]:
        return {parse_arch_str(name): value for name, value in self.values.items()}

    def hypervolume_gap(self, values: np.ndarray) -> float:
        """``100 * (1 - HV(values) / HV(true front))`` in the table-wide normalization."""
        return hypervolume_gap(values, self.lower, self.upper, self.front_hypervolume)
