"""What the next trial should train, from the trials in storage seen as plain values.

Use :class:`Planner` with a list of :class:`TrialView` (the sampler builds them from the study's
trials) to get the candidates a new trial may claim, best first. The planner holds the stage
logic of a :class:`~optuna_devnas.spaces.CellSpace` study and the candidate sets of any other
search space, and turns both into ``_ranking.Problem`` tensors. It caches what is a pure function
of finished trials (a stage's ranked batch, candidate encodings, cheap objective values) and the
last GP hyperparameters (a warm start only): losing the caches changes no decision of a stage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import TrialState
import torch

from optuna_devnas.samplers import _candidates, _ranking, _stages
from optuna_devnas.samplers._encoding import ParamEncoding, params_key
from optuna_devnas.samplers._pareto import Maximized, pareto_mask
from optuna_devnas.spaces import IDENTITY, CellSpace, choices_at

CheapFunction = Callable[[dict[str, Any]], float]

ENUMERATE_LIMIT = 20_000
"""A finite search space up to this size is scored whole instead of around the Pareto set."""

LOCAL_EVERY = 2
"""In a generic space, every ``LOCAL_EVERY``-th proposal is a local step.

A local step ranks only one-parameter changes of the Pareto set (of its leading members, see
``LOCAL_PARENTS``): expected hypervolume improvement over the whole space trusts the
surrogate's view of what matters, and single changes of the best cells that the surrogate sees
no reason to try are often where the front improves (see ``docs/sampler.md``).
"""


LOCAL_PARENTS = 3
"""With cheap objectives, a local step changes one parameter of the leading Pareto members.

Members lead by their exclusive hypervolume contribution (:func:`by_contribution`), and when
their one-parameter changes are all taken the next members join: the leading members own the
widest stretches of the front, where one better cell adds the most. Without cheap objectives
every member is a parent, since changes of every member also teach the surrogate the cost of
the front's cells, which cheap objectives give exactly.
"""


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


def by_contribution(parents: Sequence[TrialView], usable: Sequence[TrialView]) -> list[TrialView]:
    """``parents`` (a Pareto set) by exclusive hypervolume contribution, largest first.

    Objectives are min-max scaled over ``usable`` (signed, maximized), the reference point 10%
    of the span beyond the worst value; with one objective the order is kept.
    """
    if len(parents) < 2 or len(parents[0].values or ()) < 2:
        return list(parents)
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    low, span = _ranking.min_max(torch.tensor([v.values for v in usable], dtype=torch.float64))
    front = (torch.tensor([v.values for v in parents], dtype=torch.float64) - low) / span
    hypervolume = Hypervolume(torch.full((front.shape[1],), -0.1, dtype=torch.float64))
    total = hypervolume.compute(front)
    keep = torch.ones(len(front), dtype=torch.bool)
    contribution = []
    for i in range(len(front)):
        keep[i] = False
        contribution.append(total - hypervolume.compute(front[keep]))
        keep[i] = True
    order = sorted(range(len(parents)), key=lambda i: -contribution[i])
    return [parents[i] for i in order]


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
class _Pool:
    """Candidates with their keys, encodings (``N x d``) and cheap values (``N x c``)."""

    params: list[dict[str, Any]]
    keys: list[str]
    X: torch.Tensor
    cheap: torch.Tensor
    valid: list[bool]


def cell_distributions(space: CellSpace) -> dict[str, BaseDistribution]:
    """The distributions of the parameters ``space.suggest`` records."""
    dists: dict[str, BaseDistribution] = {space.length_param: IntDistribution(1, space.max_layers)}
    for position in range(space.max_layers):
        dists[space.layer_param(position)] = CategoricalDistribution(choices_at(position))
    return dists


def canonical_cell(space: CellSpace) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Map a cell's parameters to those of its canonical architecture.

    Architectures that build the same network (``conv1x1-identity`` and ``conv1x1``, see
    :meth:`~optuna_devnas.spaces.Architecture.canonical`) then have the same key, so a network
    that was trained, or is being trained, is never proposed again under another name.
    Parameters that are no complete cell (a running trial's first suggestions) are kept.
    """

    def canonical(params: dict[str, Any]) -> dict[str, Any]:
        try:
            arch = space.from_params(params)
        except ValueError:
            return params
        return space.to_params(arch.canonical())

    return canonical


def cell_encoding(space: CellSpace) -> ParamEncoding:
    """Encoding of cells by what they compute: ``identity`` layers read as absent.

    A child that appends ``identity`` then has its parent's encoding, so the surrogate knows
    its outcome and the acquisition gives it no improvement (it would retrain a known network).
    The length column is left out: the absent tokens already say it.
    """
    layers = {
        name: dist
        for name, dist in cell_distributions(space).items()
        if name != space.length_param
    }

    def canonical(params: Mapping[str, Any]) -> Mapping[str, Any]:
        return {n: v for n, v in params.items() if n in layers and v != IDENTITY}

    return ParamEncoding(layers, canonical=canonical)


class Planner:
    """Candidates for new trials, best first (see the module docstring).

    Args:
        k:
            Trials per stage.
        selection:
            ``"ehvi"`` or ``"pareto"``.
        cheap:
            ``{objective index: function of the parameters}``.
        signs:
            ``+1`` for maximized and ``-1`` for minimized objectives.
        n_startup_trials:
            Completed trials before the surrogate guides a generic search space.
        max_candidates:
            Candidates scored per proposal in a generic space that is not enumerated.
    """

    def __init__(
        self,
        *,
        k: int,
        selection: _ranking.Selection,
        cheap: Mapping[int, CheapFunction],
        signs: Sequence[float],
        n_startup_trials: int,
        max_candidates: int,
    ) -> None:
        self.k = k
        self.selection = selection
        self.cheap = dict(sorted(cheap.items()))
        self.signs = list(signs)
        self.n_startup_trials = n_startup_trials
        self.max_candidates = max_candidates
        self._batches: dict[tuple[Any, ...], tuple[list[Choice], ...]] = {}
        self._cheap_values: dict[str, tuple[float, ...] | None] = {}
        self._pools: dict[tuple[Any, ...], _Pool] = {}
        # Per search space: the last GP hyperparameters, and the trials they were fitted to.
        self._warm: dict[tuple[Any, ...], tuple[list[dict[str, torch.Tensor]], int]] = {}

    # -- CellSpace stages ---------------------------------------------------------------------
    def plan_cells(
        self, space: CellSpace, views: Sequence[TrialView], rng: np.random.Generator
    ) -> list[Choice]:
        """Candidates in DPP-Net's stage order, then what a worker does while a stage runs.

        ``views`` must hold canonical cell parameters (:func:`canonical_cell`). The current
        stage is the latest one that was not proposed ahead. Its members that no trial holds
        come first. When every member is held and some still run, a worker that would wait
        gets, in order: the stage's next-ranked candidates, then the next stage's best guess
        (ranked from the results so far, recorded as ``ahead``), then random cells
        (``filler``; the sampler takes these only after waiting for a result).
        """
        held = {view.key for view in views}
        settled = [v for v in views if not v.ahead]
        running_stages = {v.stage for v in settled if v.state == TrialState.RUNNING}
        stage = max([v.stage for v in settled] + [1])
        encoding = cell_encoding(space)
        while True:
            ranked = self._stage_batch(space, stage, views, encoding)
            size = len(ranked) if stage == 1 else self.k
            members = [c for c in ranked[:size] if c.key not in held]
            if members:
                return members + [c for c in ranked[size:] if c.key not in held]
            if stage in running_stages:
                extras = [c for c in ranked[size:] if c.key not in held]
                guesses = [
                    replace(c, ahead=True)
                    for c in self._stage_batch(space, stage + 1, views, encoding)
                    if c.key not in held
                ]
                fillers = self._cell_fillers(space, stage, held, rng, filler=True)
                return extras + guesses + fillers
            if not ranked and stage > space.max_layers:
                # Every neighbour of the Pareto set is held: random cells, at once.
                return self._cell_fillers(space, stage, held, rng, filler=False)
            stage += 1

    def _stage_batch(
        self,
        space: CellSpace,
        stage: int,
        views: Sequence[TrialView],
        encoding: ParamEncoding,
    ) -> list[Choice]:
        """Stage ``stage``'s candidates ranked: a function of earlier stages' finished trials."""
        earlier = [v for v in views if v.stage < stage and v.state.is_finished() and v.params]
        signature = (stage, tuple((v.number, v.state, v.feasible) for v in earlier))
        cached = self._batches.get(signature)
        if cached is not None:
            return list(cached[0])
        outcomes = []
        for view in earlier:
            try:
                arch = space.from_params(view.params)
            except ValueError:
                continue
            outcomes.append(
                _stages.Outcome(arch, view.stage, view.values, view.usable and view.feasible)
            )
        evaluated = {o.architecture for o in outcomes}
        archs = [a for a in _stages.stage_candidates(space, stage, outcomes) if a not in evaluated]
        pool = self._make_pool([space.to_params(a) for a in archs], encoding)
        free = [i for i in range(len(archs)) if pool.valid[i]]
        if stage == 1 or not free:
            ranked = [Choice(pool.params[i], stage, None) for i in free]
        else:
            q = min(self.k, len(free))
            ranked = self._rank(pool, free, earlier, [], encoding, q=q, stage=stage, warm=None)
        self._batches[signature] = (ranked,)
        return list(ranked)

    def _cell_fillers(
        self,
        space: CellSpace,
        stage: int,
        held: set[str],
        rng: np.random.Generator,
        *,
        filler: bool,
    ) -> list[Choice]:
        length = min(stage, space.max_layers)
        out: list[Choice] = []
        for attempt in range(64):
            n_layers = length if attempt < 32 else int(rng.integers(1, space.max_layers + 1))
            layers = [
                choices_at(i)[int(rng.integers(len(choices_at(i))))] for i in range(n_layers)
            ]
            arch = space.architecture(layers).canonical()
            params = space.to_params(arch)
            if params_key(params) not in held:
                held.add(params_key(params))
                out.append(
                    Choice(params, stage if arch.n_layers == stage else 0, None, filler=filler)
                )
        return out

    # -- any search space --------------------------------------------------------------------
    def plan_generic(
        self,
        distributions: Mapping[str, BaseDistribution],
        views: Sequence[TrialView],
        rng: np.random.Generator,
    ) -> list[Choice]:
        """Initial design, then surrogate-ranked candidates around the Pareto set."""
        encoding = ParamEncoding(distributions)
        held = {view.key for view in views}
        finished = [v for v in views if v.state.is_finished() and v.params]
        patterns = sorted({tuple(sorted(v.params)) for v in finished}) or [tuple(distributions)]
        usable = [v for v in finished if v.usable]
        pool = self._pool(distributions, encoding, patterns, usable, rng)
        free = [i for i, key in enumerate(pool.keys) if key not in held and pool.valid[i]]
        if len(patterns) > 1:
            # A conditional space: only candidates the objective would realise as proposed.
            branches = _candidates.Branches([v.params for v in finished], distributions)
            free = [i for i in free if branches.allows(pool.params[i])]
        if len(usable) < self.n_startup_trials:
            return self._initial(pool, free, views, rng)
        running = [v for v in views if v.state == TrialState.RUNNING and v.params]
        warm_key = tuple(sorted(distributions))
        if len(usable) % LOCAL_EVERY == LOCAL_EVERY - 1:
            # A local step: only one-parameter changes of the Pareto set compete.
            parents = self._parents(usable)
            width = len(parents)
            if self.cheap:
                parents, width = by_contribution(parents, usable), LOCAL_PARENTS
            free_keys = {pool.keys[i] for i in free}
            keys: set[str] = set()
            for rank, parent in enumerate(parents):
                if rank >= width and not keys.isdisjoint(free_keys):
                    break
                near = _candidates.neighbourhood([parent.params], distributions, rng)
                keys.update(params_key(params) for params in near)
            free = [i for i in free if pool.keys[i] in keys] or free
        return self._rank(pool, free, finished, running, encoding, q=1, stage=2, warm=warm_key)

    def _pool(
        self,
        distributions: Mapping[str, BaseDistribution],
        encoding: ParamEncoding,
        patterns: Sequence[Sequence[str]],
        usable: Sequence[TrialView],
        rng: np.random.Generator,
    ) -> _Pool:
        names = sorted(distributions)
        if len(patterns) == 1 and list(patterns[0]) == names:
            size = _candidates.space_size(names, distributions)
            if size is not None and size <= ENUMERATE_LIMIT:
                # The whole space, encoded once per study: a pure function of the distributions.
                signature = tuple((n, repr(distributions[n])) for n in names)
                if signature not in self._pools:
                    every = _candidates.enumerate_all(names, distributions)
                    self._pools[signature] = self._make_pool(every, encoding)
                return self._pools[signature]
        parents = self._parents(usable)
        found = _candidates.neighbourhood([v.params for v in parents], distributions, rng)
        n_random = max(self.max_candidates - len(found), self.max_candidates // 4)
        found += _candidates.random_candidates(patterns, distributions, n_random, rng)
        unique = {params_key(p): p for p in found}
        return self._make_pool(list(unique.values()), encoding)

    def _make_pool(self, params: list[dict[str, Any]], encoding: ParamEncoding) -> _Pool:
        cheap = [self.cheap_values(p) for p in params]
        valid = [c is not None for c in cheap]
        rows = [c if c is not None else (math.nan,) * len(self.cheap) for c in cheap]
        return _Pool(
            params=params,
            keys=[params_key(p) for p in params],
            X=encoding.encode(params),
            cheap=torch.tensor(rows, dtype=torch.float64).reshape(len(rows), len(self.cheap)),
            valid=valid,
        )

    def _parents(self, usable: Sequence[TrialView]) -> list[TrialView]:
        feasible = [v for v in usable if v.feasible] or list(usable)
        if not feasible:
            return []
        values = np.array([v.values for v in feasible], dtype=float)
        if values.shape[1] == 1:
            return [feasible[i] for i in np.argsort(-values[:, 0], kind="stable")[:5]]
        mask = pareto_mask(values).numpy()
        # A trial at the worst value seen of an expensive objective (an untrainable network at
        # chance level) is on the front only because it is the cheapest; its one-parameter
        # changes are more of the same, and a front of them grows one useless step at a time
        # (on NAS-Bench-201, a fifth of 100 trials went to broken cells at 0.01 ms).
        expensive = [i for i in range(values.shape[1]) if i not in self.cheap]
        floor = np.zeros(len(values), dtype=bool)
        for i in expensive:
            column = values[:, i]
            if column.max() > column.min():
                floor |= column <= column.min()
        if (mask & ~floor).any():
            mask &= ~floor
        return [v for v, keep in zip(feasible, mask) if keep]

    def _initial(
        self, pool: _Pool, free: list[int], views: Sequence[TrialView], rng: np.random.Generator
    ) -> list[Choice]:
        """Random candidates; with cheap objectives, the one farthest in cost from the rest."""
        if not free:
            return []
        order = [free[int(i)] for i in rng.permutation(len(free))]
        if self.cheap:
            sample = order[:2048]
            taken_values = [self.cheap_values(v.params) for v in views if v.params]
            taken = np.array([t for t in taken_values if t is not None], dtype=float)
            costs = pool.cheap[sample].numpy()
            best = _candidates.spread_by_cost(costs, taken.reshape(-1, costs.shape[1]), rng)
            order = [sample[best]] + [i for i in order if i != sample[best]]
        return [Choice(pool.params[i], 1, None) for i in order]

    # -- shared ------------------------------------------------------------------------------
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

    def _rank(
        self,
        pool: _Pool,
        free: Sequence[int],
        finished: Sequence[TrialView],
        running: Sequence[TrialView],
        encoding: ParamEncoding,
        *,
        q: int,
        stage: int,
        warm: tuple[Any, ...] | None,
    ) -> list[Choice]:
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
