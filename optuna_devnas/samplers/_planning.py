"""What the planners share: trials as plain values, candidates, and their ranking.

The sampler reads the study's trials into :class:`TrialView` values and asks a planner for
:class:`Choice` candidates, best first: :class:`~optuna_devnas.samplers._cells.CellPlanner` for a
``CellSpace`` study (DPP-Net's stages), :class:`~optuna_devnas.samplers._generic.GenericPlanner`
for any other search space. Both turn their candidates into a :class:`Pool` and rank it with one
:class:`Ranker`, which builds the ``_ranking.Problem`` tensors, computes cheap objectives once
per candidate, and keeps the last GP hyperparameters of a search space as a warm start (an
in-memory cache only: losing it changes no decision of a stage).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import math
from typing import Any

from optuna.trial import TrialState
import torch

from optuna_devnas.samplers import _ranking
from optuna_devnas.samplers._encoding import ParamEncoding, params_key
from optuna_devnas.samplers._pareto import Maximized

CheapFunction = Callable[[dict[str, Any]], float]

ALWAYS_REFIT_BELOW = 200
"""Below this many trials the GP hyperparameters are refitted at every proposal."""

REFIT_GROWTH = 1.05
"""From ``ALWAYS_REFIT_BELOW`` trials on, hyperparameters are refitted once the trials grew by
this factor since the last fit (every 25 trials at 500), and kept in between.

A fit costs tens of likelihood evaluations, each cubic in the trials, while the hyperparameters
of hundreds of trials move little with one more; the posterior still conditions on every trial.
"""


def needs_refit(n_trials: int, fitted: int) -> bool:
    """Whether hyperparameters last fitted to ``fitted`` trials are refitted for ``n_trials``."""
    return n_trials < ALWAYS_REFIT_BELOW or n_trials >= fitted * REFIT_GROWTH


@dataclass(frozen=True)
class TrialView:
    """A trial as the planner sees it.

    Args:
        number:
            The trial number.
        state:
            Its state (``WAITING`` trials are enqueued with fixed parameters).
        params:
            Its modelled parameters: the ones it has when finished, its claim while running.
        values:
            Objective values, maximized (``_pareto.Maximized``; completed trials only).
        feasible:
            Whether its constraints (if any) are satisfied.
        stage:
            The stage that proposed it, 0 if none did.
        ahead:
            Whether it was proposed ahead of its stage, for a worker that would have waited
            (see :meth:`Planner.plan_cells`).
    """

    number: int
    state: TrialState
    params: dict[str, Any]
    values: Maximized | None
    feasible: bool
    stage: int
    ahead: bool = False

    @property
    def key(self) -> str:
        return params_key(self.params)

    @property
    def usable(self) -> bool:
        """Completed with finite values: data for the surrogate."""
        return (
            self.state == TrialState.COMPLETE
            and self.values is not None
            and all(math.isfinite(v) for v in self.values)
        )


@dataclass(frozen=True)
class Choice:
    """A candidate for the new trial.

    Args:
        params:
            The modelled parameters to hand out.
        stage:
            The stage to record.
        prediction:
            ``{objective index: (mean, std)}`` in the objectives' own sign, or ``None`` when no
            surrogate proposed it.
        ahead:
            A guess at the next stage's batch, made before the current stage finished.
        filler:
            A random cell, for a worker that found nothing better to do.
    """

    params: dict[str, Any]
    stage: int
    prediction: dict[int, tuple[float, float]] | None
    ahead: bool = False
    filler: bool = False

    @property
    def key(self) -> str:
        return params_key(self.params)


@dataclass
class Pool:
    """Candidates with their keys, encodings (``N x d``) and cheap values (``N x c``)."""

    params: list[dict[str, Any]]
    keys: list[str]
    X: torch.Tensor
    cheap: torch.Tensor
    valid: list[bool]


class Ranker:
    """Ranks pools of candidates with the surrogate (see the module docstring).

    Args:
        selection:
            ``"ehvi"`` or ``"pareto"``.
        cheap:
            ``{objective index: function of the parameters}``.
        signs:
            ``+1`` for maximized and ``-1`` for minimized objectives.
    """

    def __init__(
        self,
        *,
        selection: _ranking.Selection,
        cheap: Mapping[int, CheapFunction],
        signs: Sequence[float],
    ) -> None:
        self.selection = selection
        self.cheap = dict(sorted(cheap.items()))
        self.signs = list(signs)
        self._cheap_values: dict[str, tuple[float, ...] | None] = {}
        # Per search space: the last GP hyperparameters, and the trials they were fitted to.
        self._warm: dict[tuple[Any, ...], tuple[list[dict[str, torch.Tensor]], int]] = {}

    def cheap_values(self, params: dict[str, Any]) -> tuple[float, ...] | None:
        """The cheap objectives of ``params`` in sign, ``None`` if one fails or is not finite."""
        if not self.cheap:
            return ()
        key = params_key(params)
        if key not in self._cheap_values:
            try:
                raw = [float(fn(dict(params))) for fn in self.cheap.values()]
            except Exception:  # A candidate the user's function rejects is dropped.
                self._cheap_values[key] = None
            else:
                ok = all(math.isfinite(v) for v in raw)
                self._cheap_values[key] = (
                    tuple(self.signs[i] * v for i, v in zip(self.cheap, raw)) if ok else None
                )
        return self._cheap_values[key]

    def make_pool(self, params: list[dict[str, Any]], encoding: ParamEncoding) -> Pool:
        cheap = [self.cheap_values(p) for p in params]
        valid = [c is not None for c in cheap]
        rows = [c if c is not None else (math.nan,) * len(self.cheap) for c in cheap]
        return Pool(
            params=params,
            keys=[params_key(p) for p in params],
            X=encoding.encode(params),
            cheap=torch.tensor(rows, dtype=torch.float64).reshape(len(rows), len(self.cheap)),
            valid=valid,
        )

    def rank(
        self,
        pool: Pool,
        free: Sequence[int],
        finished: Sequence[TrialView],
        running: Sequence[TrialView],
        encoding: ParamEncoding,
        *,
        q: int,
        stage: int,
        warm: tuple[Any, ...] | None = None,
    ) -> list[Choice]:
        """``pool``'s candidates at ``free`` as choices, best first.

        ``finished`` trials train the surrogate, ``running`` ones are pending; ``warm`` names
        the search space whose last GP hyperparameters start the fits (none: fit from the
        defaults, as every stage batch does so that it depends on the finished trials alone).
        """
        free = list(free)
        train = [v for v in finished if v.usable and self.cheap_values(v.params) is not None]
        if not train:
            return [Choice(pool.params[i], stage, None) for i in free]
        pending = [v for v in running if self.cheap_values(v.params) is not None]
        index = torch.tensor(free, dtype=torch.long)
        problem = _ranking.Problem(
            train_X=encoding.encode([v.params for v in train]),
            train_Y=torch.tensor([v.values for v in train], dtype=torch.float64),
            train_cheap=self._cheap_tensor([v.params for v in train]),
            feasible=torch.tensor([v.feasible for v in train]),
            cand_X=pool.X[index],
            cand_cheap=pool.cheap[index],
            cheap=list(self.cheap),
            pending_X=encoding.encode([v.params for v in pending]),
            pending_cheap=self._cheap_tensor([v.params for v in pending]),
            cat_dims=encoding.cat_dims,
            num_dims=encoding.num_dims,
        )
        warm_starts, fitted = self._warm.get(warm, (None, 0)) if warm is not None else (None, 0)
        refit = needs_refit(len(train), fitted)
        ranking = _ranking.rank(
            problem, q, selection=self.selection, warm_starts=warm_starts, refit=refit
        )
        if warm is not None and (refit or warm_starts is None):
            self._warm[warm] = (ranking.hyperparameters, len(train))
        choices = []
        for position in ranking.order:
            prediction = {
                objective: (
                    self.signs[objective] * float(ranking.mean[position, column]),
                    float(ranking.std[position, column]),
                )
                for column, objective in enumerate(ranking.expensive)
            }
            choices.append(Choice(pool.params[free[position]], stage, prediction))
        return choices

    def _cheap_tensor(self, params: Sequence[dict[str, Any]]) -> torch.Tensor:
        rows = [self.cheap_values(p) for p in params]
        return torch.tensor(rows, dtype=torch.float64).reshape(len(rows), len(self.cheap))
