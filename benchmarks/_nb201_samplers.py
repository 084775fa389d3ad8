"""The samplers the NAS-Bench-201 benchmark compares, by name, each at its default settings.

``dpp-cheap`` is DPPSampler told that latency (objective 1) is a table look-up from the
parameters; ``dpp`` is DPPSampler with no arguments but the seed (both objectives modelled).
The peers are Optuna 5's samplers at defaults (NSGA-II with population 20, as in
``../shared/DESIGN.md`` section 9) and optuna-integration's BoTorchSampler.
"""

from __future__ import annotations

from collections.abc import Callable
import hashlib
from pathlib import Path

import optuna

from benchmarks._nb201_table import NB201Problem

SamplerFactory = Callable[[NB201Problem, int], optuna.samplers.BaseSampler]


def _dpp(problem: NB201Problem, seed: int, cheap: bool) -> optuna.samplers.BaseSampler:
    from optuna_devnas.samplers import DPPSampler

    if cheap:
        return DPPSampler(cheap_objectives={1: problem.latency}, seed=seed)
    return DPPSampler(seed=seed)


def _botorch(problem: NB201Problem, seed: int) -> optuna.samplers.BaseSampler:
    from optuna_integration import BoTorchSampler

    return BoTorchSampler(seed=seed)


SAMPLERS: dict[str, SamplerFactory] = {
    "dpp-cheap": lambda problem, seed: _dpp(problem, seed, cheap=True),
    "dpp": lambda problem, seed: _dpp(problem, seed, cheap=False),
    "random": lambda problem, seed: optuna.samplers.RandomSampler(seed=seed),
    "tpe": lambda problem, seed: optuna.samplers.TPESampler(seed=seed),
    "nsga2": lambda problem, seed: optuna.samplers.NSGAIISampler(population_size=20, seed=seed),
    "gp": lambda problem, seed: optuna.samplers.GPSampler(seed=seed),
    "botorch": _botorch,
}
# What the tables call them.
LABELS = {
    "dpp-cheap": "DPPSampler (cheap latency)",
    "dpp": "DPPSampler",
    "random": "RandomSampler",
    "tpe": "TPESampler",
    "nsga2": "NSGAIISampler(population_size=20)",
    "gp": "GPSampler",
    "botorch": "BoTorchSampler (optuna-integration)",
}
OURS = ("dpp-cheap", "dpp")
PEERS = tuple(name for name in SAMPLERS if name not in OURS)


def dpp_available() -> bool:
    """Whether ``optuna_devnas.samplers.DPPSampler`` can be imported yet."""
    try:
        from optuna_devnas.samplers import DPPSampler  # noqa: F401
    except ImportError:
        return False
    return True


def sampler_source_hash() -> str:
    """A hash of ``optuna_devnas/samplers``' source, to tell which DPPSampler a run measured."""
    import optuna_devnas.samplers

    digest = hashlib.sha256()
    folder = Path(optuna_devnas.samplers.__file__).parent
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]
