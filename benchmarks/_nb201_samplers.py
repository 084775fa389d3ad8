"""The samplers the tabular benchmarks compare, by name, each at its default settings.

``dpp-cheap`` is DPPSampler told that every objective but the error (latency, parameters) is a
table look-up from the parameters; ``dpp-pareto`` the same with DPP-Net's own selection rule
(``selection="pareto"``); ``dpp`` is DPPSampler with no arguments but the seed (every
objective modelled). On a ``CellSpace`` problem each is also told the space. The peers are
Optuna 5's samplers at defaults (NSGA-II with population 20, as in ``../shared/DESIGN.md``
section 9) and optuna-integration's BoTorchSampler.
"""

from __future__ import annotations

from collections.abc import Callable
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

if TYPE_CHECKING:
    from benchmarks._cellspace_problem import CellSpaceProblem
    from benchmarks._nb201_table import NB201Problem

Problem = Any  # NB201Problem | CellSpaceProblem: values, objectives, cheap, sampler_options
SamplerFactory = Callable[[Problem, int], optuna.samplers.BaseSampler]

DPP_OPTIONS: dict[str, Any] = {}
"""Extra ``DPPSampler`` arguments of the runs in this process (``benchmarks/ablation.py``)."""


def _dpp(
    problem: NB201Problem | CellSpaceProblem, seed: int, cheap: bool, selection: str = "ehvi"
) -> optuna.samplers.BaseSampler:
    from optuna_devnas.samplers import DPPSampler

    return DPPSampler(
        cheap_objectives=problem.cheap if cheap else None,
        selection=selection,
        seed=seed,
        **problem.sampler_options,
        **DPP_OPTIONS,
    )


def _botorch(problem: Problem, seed: int) -> optuna.samplers.BaseSampler:
    from optuna_integration import BoTorchSampler

    return BoTorchSampler(seed=seed)


SAMPLERS: dict[str, SamplerFactory] = {
    "dpp-cheap": lambda problem, seed: _dpp(problem, seed, cheap=True),
    "dpp-pareto": lambda problem, seed: _dpp(problem, seed, cheap=True, selection="pareto"),
    "dpp": lambda problem, seed: _dpp(problem, seed, cheap=False),
    "random": lambda problem, seed: optuna.samplers.RandomSampler(seed=seed),
    "tpe": lambda problem, seed: optuna.samplers.TPESampler(seed=seed),
    "nsga2": lambda problem, seed: optuna.samplers.NSGAIISampler(population_size=20, seed=seed),
    "gp": lambda problem, seed: optuna.samplers.GPSampler(seed=seed),
    "botorch": _botorch,
}
# What the tables call them.
LABELS = {
    "dpp-cheap": "DPPSampler (cheap costs)",
    "dpp-pareto": "DPPSampler (cheap costs, Pareto rule)",
    "dpp": "DPPSampler",
    "random": "RandomSampler",
    "tpe": "TPESampler",
    "nsga2": "NSGAIISampler(population_size=20)",
    "gp": "GPSampler",
    "botorch": "BoTorchSampler (optuna-integration)",
}
OURS = ("dpp-cheap", "dpp-pareto", "dpp")
PEERS = tuple(name for name in SAMPLERS if name not in OURS)


def sampler_source_hash() -> str:
    """A hash of ``optuna_devnas/samplers``' source, to tell which DPPSampler a run measured."""
    import optuna_devnas.samplers

    digest = hashlib.sha256()
    folder = Path(optuna_devnas.samplers.__file__).parent
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]
