"""The trial budget of a search, kept in storage so that many workers stop at it exactly.

A search of ``trials`` runs that many trials to an end, all workers together. A trial *ends*
when it completes, is pruned, or fails in the objective (an exception, a NaN, the wrong number
of values: :data:`FAILURE_ATTR` says what). A trial that failed because its worker died or was
interrupted, or that a worker gave up before planning it, has not ended: it does not count, and
its architecture is queued again (see ``_recovery``).

Each trial *holds a place* in the budget when it has ended, runs, or waits in the queue. Before
a trial is planned, :meth:`TrialBudget.reserve` counts the places held by trials created before
it (trial numbers are given out one at a time under a lock of the study, so every worker sees
the same order): when the budget is spent, the trial is marked :data:`SURPLUS_ATTR` and failed
at once, so no worker ever runs a trial past the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_devnas._optuna_storage import set_trial_system_attr, storage_of, trial_id_of
from optuna_devnas.commands._attrs import FAILURE_ATTR, SURPLUS_ATTR


class BudgetSpent(Exception):
    """Raised in place of planning a trial past the budget (the trial is failed and marked)."""


def ended(trial: FrozenTrial) -> bool:
    """Whether ``trial`` counts against the budget as run to an end."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and FAILURE_ATTR in trial.user_attrs


def holds_place(trial: FrozenTrial) -> bool:
    """Whether ``trial`` takes a place in the budget: ended, running or waiting to run."""
    if trial.state in (TrialState.RUNNING, TrialState.WAITING):
        return not trial.system_attrs.get(SURPLUS_ATTR, False)
    return ended(trial)


@dataclass(frozen=True)
class BudgetState:
    """Counts of a study's trials as the budget sees them."""

    ended: int
    held: int
    running: int
    waiting: int

    @classmethod
    def of(cls, trials: Sequence[FrozenTrial]) -> BudgetState:
        return cls(
            ended=sum(ended(t) for t in trials),
            held=sum(holds_place(t) for t in trials),
            running=sum(t.state == TrialState.RUNNING for t in trials),
            waiting=sum(t.state == TrialState.WAITING for t in trials),
        )


class TrialBudget:
    """``n_trials`` places shared by every worker of a study (see the module docstring).

    Args:
        n_trials:
            Trials the study runs to an end.
    """

    def __init__(self, *, n_trials: int) -> None:
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
            raise ValueError(f"Got n_trials={n_trials!r}, but expected an integer >= 1.")
        self.n_trials = n_trials

    def state(self, study: optuna.Study) -> BudgetState:
        return BudgetState.of(study.get_trials(deepcopy=False))

    def has_work(self, state: BudgetState) -> bool:
        """Whether a worker should start a trial: places are left, or a trial waits to run."""
        return state.waiting > 0 or state.held < self.n_trials

    def reserve(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Keep ``trial``'s place, or fail it as surplus and raise :class:`BudgetSpent`."""
        trials = study.get_trials(deepcopy=False)
        ahead = sum(holds_place(t) for t in trials if t.number < trial.number)
        if ahead < self.n_trials:
            return
        set_trial_system_attr(study, trial, SURPLUS_ATTR, True)
        # Not study.tell: it would run the sampler's after_trial inside its before_trial.
        storage_of(study).set_trial_state_values(trial_id_of(trial), state=TrialState.FAIL)
        raise BudgetSpent(f"Trial {trial.number} is past the budget of {self.n_trials} trials.")
