"""Candidates in any Optuna search space: an initial design, then surrogate-ranked steps.

Use :class:`GenericPlanner` with the study's trials to get the candidates a new trial may claim:
``n_startup_trials`` spread-out random points, then, every trial, candidates ranked by the
surrogate (the whole space when it is small enough, else one-parameter changes of the Pareto
set and random points), every :data:`LOCAL_EVERY`-th of them a local step around the Pareto
set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState
import torch

from optuna_devnas._imports import LazyImport
from optuna_devnas.samplers import _candidates, _ranking
from optuna_devnas.samplers._encoding import ParamEncoding, params_key
from optuna_devnas.samplers._pareto import pareto_mask
from optuna_devnas.samplers._planning import Choice, Pool, Ranker, TrialView

if TYPE_CHECKING:
    import botorch.utils.multi_objective
else:  # BoTorch loads at the first ranking, not with the sampler.
    botorch = LazyImport("botorch")

ENUMERATE_LIMIT = 20_000
"""A finite search space up to this size is scored whole instead of around the Pareto set."""

INITIAL_STAGE = 1
"""The stage recorded for the initial design."""

RANKED_STAGE = 2
"""The stage recorded for surrogate-ranked proposals."""

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


def by_contribution(parents: Sequence[TrialView], usable: Sequence[TrialView]) -> list[TrialView]:
    """``parents`` (a Pareto set) by exclusive hypervolume contribution, largest first.

    Objectives are min-max scaled over ``usable`` (signed, maximized), the reference point 10%
    of the span beyond the worst value; with one objective the order is kept.
    """
    if len(parents) < 2 or len(parents[0].values or ()) < 2:
        return list(parents)
    bounds = _ranking.column_bounds(torch.tensor([v.values for v in usable], dtype=torch.float64))
    front = torch.tensor([v.values for v in parents], dtype=torch.float64)
    front = botorch.utils.transforms.normalize(front, bounds)
    reference = torch.full((front.shape[1],), -0.1, dtype=torch.float64)
    hypervolume = botorch.utils.multi_objective.Hypervolume(reference)
    total = hypervolume.compute(front)
    keep = torch.ones(len(front), dtype=torch.bool)
    contribution = []
    for i in range(len(front)):
        keep[i] = False
        contribution.append(total - hypervolume.compute(front[keep]))
        keep[i] = True
    order = sorted(range(len(parents)), key=lambda i: -contribution[i])
    return [parents[i] for i in order]


class GenericPlanner:
    """The initial design, then ranked candidates (see the module docstring).

    Args:
        ranker:
            Ranks the candidates.
        n_startup_trials:
            Completed trials before the surrogate takes over.
        max_candidates:
            Candidates scored per proposal in a space that is not enumerated.
    """

    def __init__(self, ranker: Ranker, *, n_startup_trials: int, max_candidates: int) -> None:
        self.ranker = ranker
        self.n_startup_trials = n_startup_trials
        self.max_candidates = max_candidates
        self._pools: dict[tuple[Any, ...], Pool] = {}

    def plan(
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
            if self.ranker.cheap:
                parents, width = by_contribution(parents, usable), LOCAL_PARENTS
            free_keys = {pool.keys[i] for i in free}
            keys: set[str] = set()
            for rank, parent in enumerate(parents):
                if rank >= width and not keys.isdisjoint(free_keys):
                    break
                near = _candidates.neighbourhood([parent.params], distributions, rng)
                keys.update(params_key(params) for params in near)
            free = [i for i in free if pool.keys[i] in keys] or free
        return self.ranker.rank(
            pool, free, finished, running, encoding, q=1, stage=RANKED_STAGE, warm=warm_key
        )

    def _pool(
        self,
        distributions: Mapping[str, BaseDistribution],
        encoding: ParamEncoding,
        patterns: Sequence[Sequence[str]],
        usable: Sequence[TrialView],
        rng: np.random.Generator,
    ) -> Pool:
        names = sorted(distributions)
        if len(patterns) == 1 and list(patterns[0]) == names:
            size = _candidates.space_size(names, distributions)
            if size is not None and size <= ENUMERATE_LIMIT:
                # The whole space, encoded once per study: a pure function of the distributions.
                signature = tuple((n, repr(distributions[n])) for n in names)
                if signature not in self._pools:
                    every = _candidates.enumerate_all(names, distributions)
                    self._pools[signature] = self.ranker.make_pool(every, encoding)
                return self._pools[signature]
        parents = self._parents(usable)
        found = _candidates.neighbourhood([v.params for v in parents], distributions, rng)
        n_random = max(self.max_candidates - len(found), self.max_candidates // 4)
        found += _candidates.random_candidates(patterns, distributions, n_random, rng)
        unique = {params_key(p): p for p in found}
        return self.ranker.make_pool(list(unique.values()), encoding)

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
        expensive = [i for i in range(values.shape[1]) if i not in self.ranker.cheap]
        floor = np.zeros(len(values), dtype=bool)
        for i in expensive:
            column = values[:, i]
            if column.max() > column.min():
                floor |= column <= column.min()
        if (mask & ~floor).any():
            mask &= ~floor
        return [v for v, keep in zip(feasible, mask) if keep]

    def _initial(
        self, pool: Pool, free: list[int], views: Sequence[TrialView], rng: np.random.Generator
    ) -> list[Choice]:
        """Random candidates; with cheap objectives, the one farthest in cost from the rest."""
        if not free:
            return []
        order = [free[int(i)] for i in rng.permutation(len(free))]
        if self.ranker.cheap:
            sample = order[:2048]
            taken_values = [self.ranker.cheap_values(v.params) for v in views if v.params]
            taken = np.array([t for t in taken_values if t is not None], dtype=float)
            costs = pool.cheap[sample].numpy()
            best = _candidates.spread_by_cost(costs, taken.reshape(-1, costs.shape[1]), rng)
            order = [sample[best]] + [i for i in order if i != sample[best]]
        return [Choice(pool.params[i], INITIAL_STAGE, None) for i in order]
