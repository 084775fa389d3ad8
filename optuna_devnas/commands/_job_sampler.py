"""``JobSampler``: a sampler as a search job runs it, guarded before every trial is planned.

Optuna creates a trial, then lets the sampler plan it (``DPPSampler`` fits its surrogate and
chooses the stage's architectures there, 15-45 s at a stage's start), and only then starts the
trial's heartbeat. Before the wrapped sampler plans, this sampler:

- names the worker in the trial (:data:`WORKER_ATTR`, ``host:pid``),
- starts the heartbeat, so a worker killed while planning leaves a trial that goes stale and is
  failed and queued again like any other (``_recovery``),
- reserves the trial's place in the budget, or fails it as surplus (``_budget``),
- times the planning for the progress lines (``_progress``).

Everything else is passed to the wrapped sampler unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
import os
import socket
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from optuna_devnas._optuna_storage import (
    set_trial_system_attr,
    storage_of,
    trial_id_of,
    trial_system_attrs,
)
from optuna_devnas.commands._attrs import WORKER_ATTR
from optuna_devnas.commands._budget import TrialBudget
from optuna_devnas.commands._progress import Progress
from optuna_devnas.samplers import STAGE_KEY


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobSampler(BaseSampler):
    """``sampler``, with the budget reserved and the heartbeat beating before it plans a trial.

    Args:
        sampler:
            The sampler that plans and samples the trials.
        budget:
            The study's trial budget.
        progress:
            Where planning times are shown.
    """

    def __init__(self, sampler: BaseSampler, *, budget: TrialBudget, progress: Progress) -> None:
        if not isinstance(sampler, BaseSampler):
            raise ValueError(f"Got sampler={sampler!r}, but expected an Optuna sampler.")
        self.sampler = sampler
        self.budget = budget
        self.progress = progress
        self.current_trial_id: int | None = None
        """The trial this worker plans or runs (the one to queue again if interrupted)."""

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self.current_trial_id = trial_id_of(trial)
        with get_heartbeat_thread(self.current_trial_id, storage_of(study)):
            set_trial_system_attr(study, trial, WORKER_ATTR, worker_name())
            self.budget.reserve(study, trial)
            with self.progress.planning(trial.number) as plan:
                self.sampler.before_trial(study, trial)
                plan.stage = trial_system_attrs(study, trial).get(STAGE_KEY)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.sampler.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()
