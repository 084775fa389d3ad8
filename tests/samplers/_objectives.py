"""Cheap analytic objectives over ``CellSpace`` parameters for the sampler tests (no training)."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna

from optuna_devnas.spaces import CONVOLUTIONS, NORMALIZATIONS, CellSpace

SPACE = CellSpace(max_layers=3)
_RNG = np.random.default_rng(0)
# A fixed random "accuracy" contribution per (position, layer) and a cost per layer type.
_GAIN = {
    (i, name): float(_RNG.normal())
    for i in range(SPACE.max_layers)
    for name in CONVOLUTIONS + NORMALIZATIONS
}
_COST = dict(zip(CONVOLUTIONS, [1.0, 9.0, 0.5, 3.0, 0.7, 0.4])) | dict.fromkeys(
    NORMALIZATIONS, 0.1
)


def cost(params: dict[str, Any]) -> float:
    """A parameter-count-like cost of the cell in ``params``."""
    arch = SPACE.from_params(params)
    return sum(_COST[name] for name in arch.layers)


def error(params: dict[str, Any]) -> float:
    """A fake validation error: lower for longer cells and lucky layers."""
    arch = SPACE.from_params(params)
    return -sum(_GAIN[(i, name)] for i, name in enumerate(arch.layers)) - 0.5 * arch.n_layers


def objective(trial: optuna.Trial) -> tuple[float, float]:
    SPACE.suggest(trial)
    return error(trial.params), cost(trial.params)
