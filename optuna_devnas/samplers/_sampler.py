"""``DPPSampler``: DPP-Net's progressive, device-aware Pareto search as an Optuna sampler.

This module is only the Optuna glue: it reads the study's trials into plain
``_planning.TrialView`` values, asks the planner for candidates, claims one for the new trial in
storage and hands its parameters out one by one. The stages, encoding, surrogate and acquisition
live in the other modules of this package and never see a study.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import json
import math
import threading
import time
from typing import Any, get_args
import warnings

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_devnas._checks import check_positive_int
from optuna_devnas._optuna_storage import (
    set_trial_system_attr,
    storage_of,
    study_id_of,
    trial_id_of,
)
from optuna_devnas.samplers._cells import CellPlanner, canonical_cell, cell_distributions
from optuna_devnas.samplers._encoding import ParamEncoding, params_key
from optuna_devnas.samplers._generic import GenericPlanner
from optuna_devnas.samplers._pareto import signs_of
from optuna_devnas.samplers._planning import Choice, Ranker, TrialView
from optuna_devnas.samplers._ranking import Selection
from optuna_devnas.spaces import SPACE_ATTR, CellSpace

STAGE_KEY = "DPPSampler:stage"
"""Trial system attribute: the stage that proposed the trial (int)."""

PARAMS_KEY = "DPPSampler:params"
"""Trial system attribute: the modelled parameters the sampler gave the trial (dict)."""

ARCHITECTURE_KEY = "DPPSampler:architecture"
"""Trial system attribute: ``Architecture.to_dict()`` of a CellSpace trial, else the params."""

PREDICTION_KEY = "DPPSampler:prediction"
"""Trial system attribute: ``{objective index: {"mean": m, "std": s}}`` at proposal time."""

CLAIM_KEY = "DPPSampler:claim"
"""Trial system attribute: ``{"key": params key, "time": seconds}``, how workers share work."""

AHEAD_KEY = "DPPSampler:ahead"
"""Trial system attribute: ``True`` on a trial proposed ahead of its stage (a best guess)."""

_POLL_SECONDS = 0.5
_MAX_WAIT_SECONDS = 60.0
_FILLER_WAIT_SECONDS = 20.0
"""How long a worker with nothing better to train waits for a result before a random cell."""

Params = dict[str, Any]

SELECTIONS: tuple[Selection, ...] = get_args(Selection)


@dataclass(frozen=True)
class _Planners:
    """A study's planners, sharing one ranker (its caches of cheap values and warm starts)."""

    cells: CellPlanner
    generic: GenericPlanner


class DPPSampler(BaseSampler):
    """DPP-Net's progressive Pareto search with a Gaussian-process surrogate.

    DPP-Net (Dong, Cheng, Juan, Wei, Sun: "DPP-Net: Device-aware Progressive Search for
    Pareto-optimal Neural Architectures", ECCV 2018, https://arxiv.org/abs/1806.08198) trains
    the smallest cells, then grows the selected cells one layer per stage, keeping the children
    a surrogate predicts to be Pareto-optimal over accuracy and exactly computed device cost.

    With an objective that calls :meth:`optuna_devnas.CellSpace.suggest`, the sampler runs
    these stages: stage 1 trains every one-layer cell, stage ``s`` trains the ``k`` cells that
    the acquisition ranks best among the children of the trained ``(s - 1)``-layer cells and
    what earlier stages left untrained (so no stage is spent on depth that cannot pay), and
    after the last stage the search goes on over one-layer changes of the Pareto set. In any
    other search space it scores one-parameter changes of the Pareto set and random points
    (the whole space when it has at most 20,000 points) after ``n_startup_trials`` spread-out
    trials.
    Parameters it does not model go to ``independent_sampler``.

    All state lives in the study's storage (trial system attributes ``DPPSampler:stage``,
    ``DPPSampler:params``, ``DPPSampler:architecture``, ``DPPSampler:prediction`` and
    ``DPPSampler:claim``): a stage's batch is a function of the finished trials, so workers
    sharing a storage compute the same batch and never train one architecture twice, and a
    restarted study continues its stage. See ``docs/sampler.md``.

    Example:

        .. code-block:: python

            space = CellSpace(max_layers=4)
            sampler = DPPSampler(cheap_objectives={1: latency_table.params_function(space)})
            study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)

    Args:
        space:
            The cell space; by default it is read from the trials' ``"devnas:space"`` user
            attribute once a trial has called ``CellSpace.suggest`` (the first trial then goes
            to ``independent_sampler``).
        k:
            Trials per stage (DPP-Net's K). Default 8.
        selection:
            ``"ehvi"`` (default): batches chosen jointly by BoTorch's
            ``qLogNoisyExpectedHypervolumeImprovement`` over the discrete candidates.
            ``"pareto"``: DPP-Net's rule, the candidates non-dominated by predicted mean and
            exact cheap values.
        cheap_objectives:
            ``{objective index: fn(params) -> float}`` for objectives computable from a trial's
            parameters without training (latency tables, parameter counts, FLOPs). They are
            evaluated exactly for every candidate; the other objectives are modelled by GPs.
        n_startup_trials:
            In a search space other than ``CellSpace``: completed trials before the surrogate
            takes over. Default 10.
        max_candidates:
            In a search space other than ``CellSpace`` that is too large to enumerate:
            candidates scored per trial. Default 2048.
        independent_sampler:
            Samples what the sampler does not model. Default ``TPESampler(seed=seed)``.
        seed:
            Seed of the random choices (initial design, random candidates, fillers).
    """

    def __init__(
        self,
        *,
        space: CellSpace | None = None,
        k: int = 8,
        selection: Selection = "ehvi",
        cheap_objectives: Mapping[int, Callable[[dict[str, Any]], float]] | None = None,
        n_startup_trials: int = 10,
        max_candidates: int = 2048,
        independent_sampler: BaseSampler | None = None,
        seed: int | None = None,
    ) -> None:
        if space is not None and not isinstance(space, CellSpace):
            raise ValueError(f"Got space={space!r}, but expected a CellSpace or None.")
        check_positive_int(k, "k")
        if selection not in SELECTIONS:
            raise ValueError(f"Got selection={selection!r}, but expected one of {SELECTIONS}.")
        cheap = dict(cheap_objectives or {})
        for index, fn in cheap.items():
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise ValueError(
                    f"Got cheap_objectives key {index!r}, but expected an objective index >= 0."
                )
            if not callable(fn):
                raise ValueError(
                    f"Got cheap_objectives[{index}]={fn!r}, but expected a function of the "
                    "parameters returning a float."
                )
        check_positive_int(n_startup_trials, "n_startup_trials")
        check_positive_int(max_candidates, "max_candidates")
        if independent_sampler is not None and not isinstance(independent_sampler, BaseSampler):
            raise ValueError(
                f"Got independent_sampler={independent_sampler!r}, but expected an Optuna sampler."
            )
        self._space = space
        self._k = k
        self._selection = selection
        self._cheap = cheap
        self._n_startup_trials = n_startup_trials
        self._max_candidates = max_candidates
        self._seed = seed
        self._independent_sampler = independent_sampler or TPESampler(seed=seed)
        self._rng = np.random.default_rng(seed)
        self._lock = threading.RLock()
        self._planners: dict[tuple[int, tuple[float, ...]], _Planners] = {}
        self._proposals: dict[int, dict[str, Any]] = {}
        self._warned: set[str] = set()

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._independent_sampler.reseed_rng()

    # -- Optuna hooks ------------------------------------------------------------------------
    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        # Everything is decided in ``before_trial`` and handed out in ``sample_independent``,
        # so define-by-run objectives with conditional parameters work.
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {
            name: self.sample_independent(study, trial, name, dist)
            for name, dist in search_space.items()
        }

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent_sampler.before_trial(study, trial)
        fixed = trial.system_attrs.get("fixed_params") or {}
        with self._lock:
            choice = self._propose(study, trial, set(fixed))
            if choice is not None:
                self._proposals[trial_id_of(trial)] = choice.params

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        with self._lock:
            params = self._proposals.get(trial_id_of(trial))
        if params is not None and param_name in params:
            value = params[param_name]
            if ParamEncoding({param_name: param_distribution}).contains({param_name: value}):
                return value
        if params is not None:
            self._warn_once(
                param_name,
                f"DPPSampler does not model parameter {param_name!r} (it is not part of the "
                f"architecture it chose, or its distribution changed); "
                f"{type(self._independent_sampler).__name__} samples it.",
            )
        return self._independent_sampler.sample_independent(
            study, trial, param_name, param_distribution
        )

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with self._lock:
            self._proposals.pop(trial_id_of(trial), None)
        self._independent_sampler.after_trial(study, trial, state, values)

    # -- proposals ---------------------------------------------------------------------------
    def _propose(self, study: Study, trial: FrozenTrial, fixed: set[str]) -> Choice | None:
        directions = study.directions
        for index in self._cheap:
            if index >= len(directions):
                raise ValueError(
                    f"Got cheap_objectives index {index}, but the study has {len(directions)} "
                    f"objective(s), indices 0..{len(directions) - 1}."
                )
        signs = signs_of([d == StudyDirection.MAXIMIZE for d in directions])
        planner = self._planner(study, signs)
        started = time.monotonic()
        while True:
            trials = [
                t
                for t in storage_of(study).get_all_trials(study_id_of(study), deepcopy=False)
                if t.number != trial.number
            ]
            rng = np.random.default_rng(None if self._seed is None else (self._seed, trial.number))
            _check_same_space(self._space, trials)
            space = self._space or _find_space(trials)
            canonical: Callable[[Params], Params] = dict
            if space is not None:
                distributions = cell_distributions(space)
                canonical = canonical_cell(space)
            else:
                distributions = _infer_distributions(trials)
            if not distributions:
                return None  # Nothing known yet: the independent sampler explores.
            if fixed & set(distributions):
                # An enqueued or retried trial: its parameters are fixed, so it holds them.
                self._hold_fixed(study, trial, distributions, space)
                return None
            views = [_view(t, distributions, signs, canonical) for t in trials]
            if space is not None:
                choices = planner.cells.plan(space, views, rng)
            else:
                choices = planner.generic.plan(distributions, views, rng)
            if not choices:
                return None  # Every candidate has been tried: the independent sampler explores.
            waited = time.monotonic() - started
            if waited < _FILLER_WAIT_SECONDS:
                # A random cell is the last resort of a worker that would otherwise wait for
                # the stage's first results: wait a little for them first.
                choices = [c for c in choices if not c.filler]
            choice = self._claim(study, trial, choices, distributions, canonical)
            if choice is not None:
                self._record(study, trial, choice, space)
                return choice
            if not self._wait_for_rivals(study, waited, rng):
                return None

    def _planner(self, study: Study, signs: tuple[float, ...]) -> _Planners:
        """This process's planners for the study (caches of fitted models, never state)."""
        planner = self._planners.get((study_id_of(study), signs))
        if planner is None:
            ranker = Ranker(selection=self._selection, cheap=self._cheap, signs=signs)
            planner = _Planners(
                cells=CellPlanner(ranker, k=self._k),
                generic=GenericPlanner(
                    ranker,
                    n_startup_trials=self._n_startup_trials,
                    max_candidates=self._max_candidates,
                ),
            )
            self._planners[(study_id_of(study), signs)] = planner
        return planner

    def _wait_for_rivals(self, study: Study, waited: float, rng: np.random.Generator) -> bool:
        """Pause before planning again; ``False`` once waiting has lasted too long.

        Every candidate was lost to a rival that claimed it at the same moment (two rivals can
        both yield), or is held by a running trial while the next stage waits for its result.
        The pause has a random length so that rivals stop colliding. Handing the trial to the
        independent sampler instead could repeat an architecture, so that happens only after
        ``_MAX_WAIT_SECONDS``.
        """
        if waited >= _MAX_WAIT_SECONDS:
            self._warn_once(
                "wait",
                f"DPPSampler found no free candidate within {_MAX_WAIT_SECONDS:.0f} s; "
                f"{type(self._independent_sampler).__name__} samples the trial.",
            )
            return False
        time.sleep(_POLL_SECONDS * float(rng.uniform(0.2, 1.0)))
        # A dead worker's trial would hold its candidate forever: fail stale trials (a no-op
        # without heartbeats) so the stage can end and the retry callback re-queues the
        # architecture. Optuna does this only when a trial starts, and every worker may be
        # waiting here.
        optuna.storages.fail_stale_trials(study)
        return True

    @staticmethod
    def _record(study: Study, trial: FrozenTrial, choice: Choice, space: CellSpace | None) -> None:
        """Write the claimed choice to the trial's system attributes (state lives in storage)."""
        set_trial_system_attr(study, trial, STAGE_KEY, choice.stage)
        if choice.ahead:
            set_trial_system_attr(study, trial, AHEAD_KEY, True)
        set_trial_system_attr(study, trial, PARAMS_KEY, choice.params)
        architecture = space.from_params(choice.params).to_dict() if space else choice.params
        set_trial_system_attr(study, trial, ARCHITECTURE_KEY, architecture)
        prediction = None
        if choice.prediction is not None:
            prediction = {
                str(i): {"mean": mean, "std": std} for i, (mean, std) in choice.prediction.items()
            }
        set_trial_system_attr(study, trial, PREDICTION_KEY, prediction)

    def _hold_fixed(
        self,
        study: Study,
        trial: FrozenTrial,
        distributions: Mapping[str, BaseDistribution],
        space: CellSpace | None,
    ) -> None:
        """Record a fixed-parameter trial's architecture as its claim (stage attrs kept)."""
        fixed = trial.system_attrs.get("fixed_params") or {}
        params = {n: v for n, v in fixed.items() if n in distributions}
        key = params_key(params)
        # A claim without a time beats every rival's (``_beats``): a trial with fixed
        # parameters cannot yield, so a rival that claimed them too must.
        set_trial_system_attr(study, trial, CLAIM_KEY, {"key": key, "time": None})
        set_trial_system_attr(study, trial, PARAMS_KEY, params)
        architecture: dict[str, Any] = params
        if space is not None:
            try:
                architecture = space.from_params(params).to_dict()
            except ValueError:
                pass
        set_trial_system_attr(study, trial, ARCHITECTURE_KEY, architecture)

    def _claim(
        self,
        study: Study,
        trial: FrozenTrial,
        choices: Sequence[Choice],
        distributions: Mapping[str, BaseDistribution],
        canonical: Callable[[Params], Params] = dict,
    ) -> Choice | None:
        """Claim the first choice no other trial holds or claimed earlier.

        The claim is written without a time, then with the time taken after that write, then
        all trials are read back. A choice is lost if a finished or enqueued trial has it
        (it may have run and finished while this one was planning), or a running rival claims
        it with a missing or earlier (time, trial number) claim. Of two racing rivals, the one
        whose time is later took it after its first write was visible, so it sees the other's
        complete claim and yields: no two trials keep the same key.
        """
        for choice in choices:
            key = choice.key
            set_trial_system_attr(study, trial, CLAIM_KEY, {"key": key, "time": None})
            now = time.time()
            set_trial_system_attr(study, trial, CLAIM_KEY, {"key": key, "time": now})
            if not any(
                _beats(other, key, now, trial.number, distributions, canonical)
                for other in storage_of(study).get_all_trials(study_id_of(study), deepcopy=False)
                if other.number != trial.number
            ):
                return choice
        set_trial_system_attr(study, trial, CLAIM_KEY, None)
        return None

    def _warn_once(self, topic: str, message: str) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            warnings.warn(message, stacklevel=3)


def _beats(
    other: FrozenTrial,
    key: str,
    now: float,
    number: int,
    distributions: Mapping[str, BaseDistribution],
    canonical: Callable[[Params], Params],
) -> bool:
    """Whether ``other`` holds ``key`` before a claim made at ``now`` by trial ``number``."""
    if other.state == TrialState.RUNNING and other.system_attrs.get(CLAIM_KEY):
        claim = other.system_attrs[CLAIM_KEY]
        if claim.get("key") != key:
            return False
        other_time = claim.get("time")
        return other_time is None or (other_time, other.number) < (now, number)
    return _view(other, distributions, (), canonical).key == key


def _find_space(trials: Sequence[FrozenTrial]) -> CellSpace | None:
    for trial in trials:
        data = trial.user_attrs.get(SPACE_ATTR)
        if data:
            try:
                return CellSpace.from_dict(data)
            except (TypeError, ValueError):
                continue
    return None


def _check_same_space(given: CellSpace | None, trials: Sequence[FrozenTrial]) -> None:
    """Raise if the objective suggests from another ``CellSpace`` than the sampler was given.

    The sampler would plan cells the objective never builds, and every trial would repeat an
    architecture the independent sampler chose.
    """
    suggested = _find_space(trials)
    if given is not None and suggested is not None and suggested != given:
        raise ValueError(
            f"Got DPPSampler(space={given!r}), but the objective suggests from {suggested!r}; "
            "pass the objective's CellSpace, or leave space out (it is read from the trials)."
        )


def _infer_distributions(trials: Sequence[FrozenTrial]) -> dict[str, BaseDistribution]:
    """Every parameter of the finished trials, with its latest distribution."""
    found: dict[str, BaseDistribution] = {}
    for trial in trials:  # In trial order, so later distributions win.
        if trial.state.is_finished():
            found.update(trial.distributions)
    return found


def _view(
    trial: FrozenTrial,
    distributions: Mapping[str, BaseDistribution],
    signs: Sequence[float],
    canonical: Callable[[Params], Params] = dict,
) -> TrialView:
    """``trial`` as the planner sees it: ``canonical`` parameters, values maximized."""
    if trial.state == TrialState.RUNNING:
        # A running trial holds what it claimed (the key is the JSON of the parameters), or,
        # unclaimed (sampled by the independent sampler), the parameters it has so far.
        claim = trial.system_attrs.get(CLAIM_KEY) or {}
        params = _params_of_key(claim.get("key"))
        if not claim:
            params = {n: v for n, v in trial.params.items() if n in distributions}
    elif trial.state == TrialState.WAITING:
        fixed = trial.system_attrs.get("fixed_params") or {}
        params = {n: v for n, v in fixed.items() if n in distributions}
    else:
        params = {n: v for n, v in trial.params.items() if n in distributions}
    values = None
    if trial.state == TrialState.COMPLETE and trial.values is not None:
        # The sampler's one sign convention (``_pareto``): larger is better from here on.
        values = tuple(s * float(v) for s, v in zip(signs, trial.values))
    feasible = all(
        c is not None and not math.isnan(c) and c <= 0 for c in trial.constraints.values()
    )
    stage = trial.system_attrs.get(STAGE_KEY)
    return TrialView(
        number=trial.number,
        state=trial.state,
        params=canonical(params),
        values=values,
        feasible=feasible,
        stage=int(stage) if isinstance(stage, int) else 0,
        ahead=bool(trial.system_attrs.get(AHEAD_KEY, False)),
    )


def _params_of_key(key: str | None) -> dict[str, Any]:
    if not key:
        return {}
    try:
        value = json.loads(key)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
