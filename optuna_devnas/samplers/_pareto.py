"""The sampler's one sign convention for objective values, and its one Pareto test.

Inside the sampler every objective value is *maximized*: the sampler signs each value once,
where it reads a trial (``_sampler._view``; ``+1`` for maximized objectives, ``-1`` for
minimized ones), and every value the planner, the stages and the ranking pass around is of type
:data:`Maximized`. BoTorch maximizes too, so no helper negates anything: a stray negation
would make the worst front look like the best one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from optuna_devnas._imports import LazyImport

if TYPE_CHECKING:
    import botorch.utils.multi_objective
else:  # BoTorch loads at the first Pareto test, not with the sampler.
    botorch = LazyImport("botorch")

Maximized = tuple[float, ...]
"""Objective values signed so that larger is better (one per objective)."""


def signs_of(maximize: Sequence[bool]) -> tuple[float, ...]:
    """``+1`` for each maximized and ``-1`` for each minimized objective."""
    return tuple(1.0 if up else -1.0 for up in maximize)


def pareto_mask(
    values: torch.Tensor | np.ndarray | Sequence[Maximized], *, deduplicate: bool = False
) -> torch.Tensor:
    """Bool mask (``n``) of the rows of ``values`` (``n x m``, maximized) no row dominates.

    With ``deduplicate=False`` every copy of a non-dominated row is kept (two trials with equal
    values are both on the front); with ``True`` only the first.
    """
    if not torch.is_tensor(values):
        values = torch.as_tensor(np.asarray(values, dtype=float))
    if len(values) == 0:
        return torch.zeros(0, dtype=torch.bool)
    return botorch.utils.multi_objective.is_non_dominated(
        values.to(torch.float64), deduplicate=deduplicate
    )
