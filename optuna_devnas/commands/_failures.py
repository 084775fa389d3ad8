"""Failing objectives: each failure recorded with its reason, and a bound on failures in a row.

A trial whose objective raises, or returns NaN, infinity or the wrong number of values, fails
and the search goes on: one architecture that cannot be trained should not end a search. But an
objective that fails every time (a bug, a missing file) would otherwise fail trial after trial
until the budget is spent. So :class:`FailureLimit` stops a worker with
:class:`SearchFailedError` once ``max_failures`` of its trials in a row failed, saying what the
last one failed with; a search whose trials all failed ends with that error as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_devnas._errors import DevnasError
from optuna_devnas._optuna_storage import set_trial_system_attr
from optuna_devnas.commands._attrs import FAILURE_ATTR, INTERRUPTED_ATTR


class SearchFailedError(DevnasError):
    """A search stopped because its objective keeps failing."""


def recording_failures(
    objective: Callable[[optuna.Trial], Any],
) -> Callable[[optuna.Trial], Any]:
    """``objective``, recording in the trial why it failed: :data:`FAILURE_ATTR` with the
    error, or :data:`INTERRUPTED_ATTR` for Ctrl-C (not a failed architecture: run again)."""

    def run(trial: optuna.Trial) -> Any:
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as error:
            trial.set_user_attr(FAILURE_ATTR, describe(error))
            raise
        except KeyboardInterrupt:
            set_trial_system_attr(trial.study, trial, INTERRUPTED_ATTR, True)
            raise

    return run


def describe(error: BaseException) -> str:
    """``"ValueError: message"``, on one line of at most 300 characters."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:300]


def failure_of(trial: FrozenTrial) -> str:
    """``"trial 3: ValueError: message"``, without a final period."""
    reason = str(trial.user_attrs.get(FAILURE_ATTR, trial.state.name)).rstrip(".")
    return f"trial {trial.number}: {reason}"


class FailureLimit:
    """Callback: raise :class:`SearchFailedError` after ``max_failures`` failures in a row.

    Only failures of the objective count (trials with :data:`FAILURE_ATTR`); a trial whose
    worker died is retried, not counted. A complete or pruned trial resets the count.

    Args:
        max_failures:
            Failed trials in a row, in this worker, that stop it.
    """

    def __init__(self, *, max_failures: int) -> None:
        if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < 1:
            raise ValueError(f"Got max_failures={max_failures!r}, but expected an integer >= 1.")
        self.max_failures = max_failures
        self.in_a_row = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            self.in_a_row = 0
        elif trial.state == TrialState.FAIL and FAILURE_ATTR in trial.user_attrs:
            self.in_a_row += 1
            if self.in_a_row >= self.max_failures:
                raise SearchFailedError(
                    f"{self.in_a_row} trials in a row failed (max_failures="
                    f"{self.max_failures}); the last, {failure_of(trial)}. Fix the objective, "
                    "or raise --max-failures."
                )


def check_not_all_failed(trials: Sequence[FrozenTrial]) -> None:
    """Raise :class:`SearchFailedError` if trials ended and every one of them failed."""
    failed = [t for t in trials if t.state == TrialState.FAIL and FAILURE_ATTR in t.user_attrs]
    if not failed or any(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials):
        return
    raise SearchFailedError(
        f"All {len(failed)} trials of the search failed; the last, {failure_of(failed[-1])}."
    )
