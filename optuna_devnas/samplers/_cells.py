"""DPP-Net's progressive stages over a ``CellSpace``, as a planner of candidates.

Use :class:`CellPlanner` with the study's trials (canonical cell parameters, see
:func:`canonical_cell`) to get the candidates a new trial may claim: the current stage's members
first, then what a worker does while a stage runs. A stage's ranked batch is a function of the
finished trials of the earlier stages only, so it is cached by them and every worker computes
the same batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from optuna_devnas.samplers import _stages
from optuna_devnas.samplers._encoding import ParamEncoding, params_key
from optuna_devnas.samplers._planning import Choice, Ranker, TrialView
from optuna_devnas.spaces import IDENTITY, CellSpace, choices_at


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


class CellPlanner:
    """DPP-Net's stages: ``k`` candidates per stage after the first (every one-layer cell).

    Args:
        ranker:
            Ranks a stage's candidates.
        k:
            Trials per stage.
    """

    def __init__(self, ranker: Ranker, *, k: int) -> None:
        self.ranker = ranker
        self.k = k
        self._batches: dict[tuple[Any, ...], list[Choice]] = {}

    def plan(
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
            return list(cached)
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
        pool = self.ranker.make_pool([space.to_params(a) for a in archs], encoding)
        free = [i for i in range(len(archs)) if pool.valid[i]]
        if stage == 1 or not free:
            ranked = [Choice(pool.params[i], stage, None) for i in free]
        else:
            q = min(self.k, len(free))
            ranked = self.ranker.rank(
                pool, free, earlier, [], encoding, q=q, stage=stage, warm=None
            )
        self._batches[signature] = ranked
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
