"""The default ``CellSpace`` as a tabular Optuna problem, from ``benchmarks/cellspace_table.py``.

``benchmarks/data/cellspace_digits.csv.gz`` holds every architecture of ``CellSpace()`` trained
on digits and measured once, so a search over the space becomes a table look-up, like
NAS-Bench-201 (:mod:`benchmarks._nb201_table`), with the same hypervolume gap. The objective
calls ``CellSpace.suggest`` (so ``DPPSampler`` runs its progressive stages) and returns the
table's validation error (the mean over training seeds) and the chosen cost columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import functools
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from benchmarks._nb201_table import check_objectives, costs_title, front_of, hypervolume_gap
from optuna_devnas.spaces import CellSpace

DEFAULT_TABLE = Path(__file__).resolve().parent / "data" / "cellspace_digits.csv.gz"
LATENCY_COLUMNS = ("latency_ms", "latency_table_ms")
"""Latency columns: measured by the ``Latency`` objective, or predicted by a ``LatencyTable``."""


def dataset_of(path: str | Path) -> str:
    """The data set a table was made on, from its name: ``cellspace_<data set>.csv.gz``."""
    return Path(path).name.split(".")[0].removeprefix("cellspace_")


@dataclass(frozen=True)
class CellSpaceProblem:
    """Minimize (validation error, latency in ms[, parameters]) over a ``CellSpace`` table.

    Build with :meth:`load`. ``values`` maps every ``str(architecture)`` to its objective
    values, in the order of ``objectives``.
    """

    dataset: str
    device: str
    latency_column: str
    values: Mapping[str, tuple[float, ...]]
    lower: np.ndarray
    upper: np.ndarray
    front: tuple[str, ...]
    front_hypervolume: float
    objectives: tuple[str, ...]
    space: CellSpace

    @classmethod
    def load(
        cls,
        path: str | Path = DEFAULT_TABLE,
        *,
        latency: str = "latency_ms",
        objectives: Sequence[str] = ("error", "latency"),
    ) -> CellSpaceProblem:
        import pandas as pd

        if latency not in LATENCY_COLUMNS:
            raise ValueError(f"Got latency={latency!r}, but expected one of {LATENCY_COLUMNS}.")
        objectives = check_objectives(objectives)
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"Got path={str(path)!r}, but no such file exists; build it with "
                "`python -m benchmarks.cellspace_table`."
            )
        table = pd.read_csv(path)
        columns = {"error": "val_error_mean", "latency": latency, "params": "params"}
        points = table[[columns[o] for o in objectives]].to_numpy(dtype=np.float64)
        names = [str(s) for s in table["architecture"]]
        space = CellSpace(max_layers=int(table["n_layers"].max()))
        if len(names) != space.size() or len(set(names)) != len(names):
            raise ValueError(
                f"Got {len(names)} rows in {str(path)!r}, but {space!r} has {space.size()} "
                "architectures: the table must hold each exactly once."
            )
        lower, upper, front, front_hypervolume = front_of(names, points)
        return cls(
            dataset=dataset_of(path),
            device=latency,
            latency_column=latency,
            values={n: tuple(float(v) for v in p) for n, p in zip(names, points, strict=True)},
            lower=lower,
            upper=upper,
            front=front,
            front_hypervolume=front_hypervolume,
            objectives=objectives,
            space=space,
        )

    @property
    def title(self) -> str:
        costs = costs_title(self.objectives, self.latency_column)
        return f"CellSpace on {self.dataset}: validation error vs {costs}"

    def suggest(self, trial: optuna.Trial) -> str:
        """Suggest a cell through ``CellSpace.suggest`` and return ``str`` of it."""
        return str(self.space.suggest(trial))

    def arch_of(self, params: Mapping[str, Any]) -> str:
        return str(self.space.from_params(dict(params)))

    @property
    def cheap(self) -> dict[int, Any]:
        """``{objective index: fn(params)}`` for every objective but the error."""
        return {i: functools.partial(self._column, i) for i in range(1, len(self.objectives))}

    def _column(self, index: int, params: Mapping[str, Any]) -> float:
        return self.values[self.arch_of(params)][index]

    @property
    def sampler_options(self) -> dict[str, Any]:
        """``DPPSampler`` is told the space, so even its first trial is a stage-1 cell."""
        return {"space": self.space}

    def hypervolume_gap(self, values: np.ndarray) -> float:
        """``100 * (1 - HV(values) / HV(true front))`` in the table-wide normalization."""
        return hypervolume_gap(values, self.lower, self.upper, self.front_hypervolume)
