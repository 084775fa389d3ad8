"""Trials whose worker died or was interrupted: failed, and their architecture queued again.

- A worker that dies (SIGKILL, a lost machine) stops its trial's heartbeat; once the grace
  period has passed Optuna fails the trial and calls :class:`RequeueTrial`.
- A worker killed between creating a trial and its first heartbeat (a few milliseconds; the
  heartbeat beats from before planning, see ``_job_sampler``) leaves a trial with no heartbeat
  at all, which Optuna never fails: :func:`fail_orphans` fails it as soon as it is older than
  the grace period.
- A trial interrupted with Ctrl-C is not a failed architecture: :func:`requeue_interrupted`
  queues it again before the process exits.

A queued copy holds the failed trial's parameters as fixed parameters, as
``study.enqueue_trial`` does, so ``DPPSampler`` keeps it in its stage and no other worker takes
the same architecture meanwhile. A trial that had no parameters yet is not queued again: the
next trial is planned afresh. None of these failures counts against the budget (``_budget``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from optuna_devnas._optuna_storage import storage_of, stored_trial, trial_id_of
from optuna_devnas.commands._attrs import (
    FAILURE_ATTR,
    INTERRUPTED_ATTR,
    SURPLUS_ATTR,
    WEIGHTS_ATTR,
    WORKER_ATTR,
)
from optuna_devnas.samplers import CLAIM_KEY, PARAMS_KEY

# Attributes of one run of a trial, not of its architecture: a queued copy starts without them.
_RUN_SYSTEM_ATTRS = (
    CLAIM_KEY,
    "fixed_params",
    INTERRUPTED_ATTR,
    SURPLUS_ATTR,
    WORKER_ATTR,
)
_RUN_USER_ATTRS = (WEIGHTS_ATTR, FAILURE_ATTR)


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a copy of ``trial`` with its parameters fixed (nothing if it had none).

    A trial killed between two suggestions has only some of its parameters; the rest of the
    architecture ``DPPSampler`` gave it (``DPPSampler:params``) is fixed too, so the copy trains
    that architecture, not one completed by another sampler (which could repeat a trained one).
    """
    if not trial.params:
        return
    system_attrs: dict[str, Any] = {
        key: value
        for key, value in trial.system_attrs.items()
        if key not in _RUN_SYSTEM_ATTRS and not key.startswith("artifacts:")
    }
    system_attrs["failed_trial"] = trial.system_attrs.get("failed_trial", trial.number)
    system_attrs["retry_history"] = [*trial.system_attrs.get("retry_history", []), trial.number]
    system_attrs["fixed_params"] = {**(trial.system_attrs.get(PARAMS_KEY) or {}), **trial.params}
    user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in _RUN_USER_ATTRS}
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING, user_attrs=user_attrs, system_attrs=system_attrs
        )
    )


class RequeueTrial:
    """Heartbeat callback: queue a dead worker's trial again, at most ``max_retry`` times.

    Optuna's ``RetryHeartbeatStaleTrialCallback`` copies the parameters as already-sampled
    ones, which a sampler planning the copy cannot see; this one fixes them instead.

    Args:
        max_retry:
            How many times one architecture is queued again.
    """

    def __init__(self, *, max_retry: int) -> None:
        if isinstance(max_retry, bool) or not isinstance(max_retry, int) or max_retry < 0:
            raise ValueError(f"Got max_retry={max_retry!r}, but expected an integer >= 0.")
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if len(trial.system_attrs.get("retry_history", [])) < self.max_retry:
            requeue(study, trial)


def fail_orphans(study: optuna.Study) -> list[int]:
    """Fail running trials that never had a heartbeat and are older than the grace period.

    Returns the numbers of the trials failed. Their worker died before the first heartbeat
    (no live worker takes longer than the grace period to send it), so waiting longer would
    only delay the search.
    """
    storage = storage_of(study)
    # Optuna wraps an RDB storage in a cache; the heartbeat table is the database's.
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, RDBStorage) or not is_heartbeat_enabled(backend):
        return []
    assert backend.heartbeat_interval is not None
    grace = timedelta(seconds=backend.grace_period or 2 * backend.heartbeat_interval)
    now = datetime.now()
    old = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.datetime_start is not None and now - t.datetime_start > grace
    ]
    beating = _with_heartbeat(backend, [trial_id_of(t) for t in old])
    failed = []
    for trial in old:
        if trial_id_of(trial) not in beating and _fail(storage, trial_id_of(trial)):
            failed.append(trial)
    callback = backend.get_heartbeat_stale_trial_callback()
    for trial in failed:
        if callback is not None:
            callback(study, stored_trial(study, trial_id_of(trial)))
    return [t.number for t in failed]


def requeue_interrupted(study: optuna.Study, trial_id: int | None) -> None:
    """Fail the trial this worker was running when interrupted, and queue it again.

    A trial interrupted in its objective was marked :data:`INTERRUPTED_ATTR` there (before
    Optuna failed it); one interrupted while planning is still running and is failed here.
    """
    if trial_id is None:
        return
    storage = storage_of(study)
    trial = storage.get_trial(trial_id)
    if trial.state == TrialState.RUNNING:
        storage.set_trial_system_attr(trial_id, INTERRUPTED_ATTR, True)
        _fail(storage, trial_id)
    elif trial.state != TrialState.FAIL or not trial.system_attrs.get(INTERRUPTED_ATTR):
        return  # it ended before the interrupt, or failed in its objective
    trials = study.get_trials(deepcopy=False)
    if any(trial.number in t.system_attrs.get("retry_history", ()) for t in trials):
        return  # another worker found it stale and queued it already
    requeue(study, storage.get_trial(trial_id))


def _fail(storage: optuna.storages.BaseStorage, trial_id: int) -> bool:
    try:
        return storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # another worker failed it first


def _with_heartbeat(storage: optuna.storages.BaseStorage, trial_ids: list[int]) -> set[int]:
    """The ids among ``trial_ids`` that have a heartbeat record in the RDB ``storage``."""
    storage = getattr(storage, "_backend", storage)
    assert isinstance(storage, RDBStorage)
    if not trial_ids:
        return set()
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    import sqlalchemy

    column = models.TrialHeartbeatModel.trial_id
    with _create_scoped_session(storage.scoped_session) as session:
        rows = session.execute(sqlalchemy.select(column).where(column.in_(trial_ids)))
        return {int(row[0]) for row in rows}
