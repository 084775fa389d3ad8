"""What an Optuna trial becomes in MLflow: its params, metrics, tags and architecture.

A pure translation from a ``FrozenTrial`` to MLflow entities (no client, no network), so the
same record is produced by the live tracker and by a later sync, and can be tested alone:

- params: the trial's parameters, and ``architecture`` (readable, e.g. ``conv3x3-bn-conv1x1``)
  when the trial carries the ``devnas:architecture`` user attribute;
- metrics: each objective value under its name, ``duration_s``, ``constraint.<name>`` values,
  numeric sampler state (system attributes ``<Name>Sampler:<key>``, e.g. DPPSampler's stage
  and surrogate prediction, logged as ``<Name>Sampler.<key>``, dicts of numbers flattened),
  Optuna's intermediate values, and the training curves
  :func:`~optuna_devnas.tracking.log_step` recorded in the storage;
- tags: state, feasibility, fail reason, non-numeric sampler state (as JSON), and the user
  attributes (as optuna-integration's ``MLflowCallback`` does). Sampler bookkeeping (claims,
  copies of the params) stays in the Optuna storage.

Timestamps come from the trial, not the clock, so writing the record twice stores nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
import datetime
import json
import math
import posixpath
import re
import time
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from mlflow.entities import Metric, Param, RunTag

ROLE_TAG = "devnas.role"
STUDY_TAG = "optuna.study_name"
STUDY_UID_TAG = "devnas.study_uid"
STUDY_UID_ATTR = "devnas:mlflow_study_uid"
RUN_CLAIM_PREFIX = "devnas:mlflow:"  # + digest of the store and experiment, then the run
TRIAL_TAG = "optuna.trial_number"
STATE_TAG = "optuna.state"
SYNCED_TAG = "devnas.synced"
PARETO_TAG = "pareto"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own nesting tag: the UI shows the run as a child.

ARCHITECTURE_ATTR = "devnas:architecture"
"""User attribute holding ``Architecture.to_dict()`` (the same key as
``optuna_devnas.spaces.ARCHITECTURE_ATTR``, spelled out to keep this module free of torch)."""

FAILURE_ATTR = "devnas:failure"
"""User attribute of a failed trial: ``"ValueError: ..."`` (the key ``devnas search`` and
:meth:`~optuna_devnas.tracking.MLflowTracker.track_in_mlflow` write; Optuna 5 keeps none)."""

SAMPLER_BOOKKEEPING = frozenset({"claim", "params", "architecture"})
"""Sampler system attributes ``<Name>Sampler:<key>`` not logged: how workers share work
(claims) and copies of the params, which the run has already."""

_NOT_TAGGED = frozenset({ARCHITECTURE_ATTR, "devnas:space", FAILURE_ATTR})

STEPS_ATTR_PREFIX = "devnas:steps:"
"""Trial system attribute ``devnas:steps:<metric>`` = ``[[step, value, timestamp_ms], ...]``."""

RUN_STATUS = {
    TrialState.COMPLETE: "FINISHED",
    TrialState.PRUNED: "KILLED",
    TrialState.FAIL: "FAILED",
    TrialState.RUNNING: "RUNNING",
    TrialState.WAITING: "SCHEDULED",
}

_SAMPLER_ATTR = re.compile(r"^\w*Sampler:(.+)$")
_NOT_ALLOWED = re.compile(r"[^\w./\- ]")
_MAX_TAG_LENGTH = 5000
_MAX_PARAM_LENGTH = 6000  # MLflow rejects longer param values


def mlflow_key(name: str) -> str:
    """``name`` made valid as an MLflow metric, param or tag key on every platform.

    Colons (Optuna's namespace separator) become dots; other characters MLflow rejects become
    underscores.
    """
    key = _NOT_ALLOWED.sub("_", str(name).replace(":", "."))
    if not key or posixpath.normpath(key) != key or key.startswith((".", "/")):
        key = "_" + key.replace("/", "_")
    return key


def objective_names(study: optuna.Study, metric_names: Sequence[str] | None) -> list[str]:
    """MLflow names of the study's objectives: ``study.metric_names`` when set, else
    ``metric_names``, else Optuna's own ``value`` / ``values_<i>``."""
    n_objectives = len(study.directions)
    if metric_names is not None and len(metric_names) != n_objectives:
        raise ValueError(
            f"Got metric_names={list(metric_names)!r}, but study {study.study_name!r} has "
            f"{n_objectives} objective(s)."
        )
    names = study.metric_names or metric_names
    if names is None:
        return ["value"] if n_objectives == 1 else [f"values_{i}" for i in range(n_objectives)]
    if len(names) != n_objectives:
        raise ValueError(
            f"Got metric_names={list(names)!r}, but study {study.study_name!r} has "
            f"{n_objectives} objective(s)."
        )
    keys = [mlflow_key(name) for name in names]
    if len(set(keys)) != len(keys):
        raise ValueError(f"Got metric_names={list(names)!r}, but expected distinct names.")
    return keys


def readable_architecture(data: Any) -> str | None:
    """``str(Architecture.from_dict(data))``, or ``None`` when ``data`` is not one."""
    if not isinstance(data, dict):
        return None
    from optuna_devnas.spaces import Architecture  # imports torch: only when there is one

    try:
        return str(Architecture.from_dict(data))
    except (TypeError, ValueError, KeyError):
        return None


def millis(moment: datetime.datetime | None) -> int:
    """Milliseconds since the epoch of ``moment`` (now when ``None``), as MLflow wants them."""
    return int((moment.timestamp() if moment is not None else time.time()) * 1000)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _tag_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:_MAX_TAG_LENGTH]


def _numeric_leaves(name: str, value: Any) -> list[tuple[str, float]] | None:
    """``[(name, value)]`` for a finite number, ``[(name.key, ...)...]`` for a dict whose
    leaves all are (DPPSampler's prediction ``{0: {"mean": m, "std": s}}``), else ``None``."""
    if _is_number(value):
        return [(name, float(value))] if math.isfinite(value) else None
    if not isinstance(value, dict) or not value:
        return None
    leaves: list[tuple[str, float]] = []
    for key, item in value.items():
        inner = _numeric_leaves(f"{name}.{mlflow_key(str(key))}", item)
        if inner is None:
            return None
        leaves.extend(inner)
    return leaves


def user_tags(user_attrs: dict[str, Any]) -> list[RunTag]:
    """The trial's user attributes as tags, as optuna-integration's ``MLflowCallback`` sets
    them (InstaNAS's ``instanas.children``, a search's ``devnas.weights``). The architecture
    and the space, already params and an artifact, are left out; a key that would pass for
    one of MLflow's own tags gets the prefix ``user.``."""
    from mlflow.entities import RunTag

    tags = []
    for key, value in sorted(user_attrs.items()):
        if key in _NOT_TAGGED:
            continue
        name = mlflow_key(key)
        if name.startswith("mlflow."):
            name = "user." + name
        tags.append(RunTag(name, _tag_value(value)))
    return tags


@dataclass(frozen=True)
class TrialRecord:
    """A trial as MLflow entities, plus the run's final status and end time."""

    params: list[Param]
    metrics: list[Metric]
    tags: list[RunTag]
    architecture: dict[str, Any] | None
    status: str
    end_time: int


def trial_record(
    trial: FrozenTrial, metric_names: Sequence[str], skip_steps: Iterable[tuple[str, int]] = ()
) -> TrialRecord:
    """Translate ``trial``; ``skip_steps`` lists ``(metric, step)`` curve points already sent."""
    from mlflow.entities import Metric, Param, RunTag

    end = millis(trial.datetime_complete or trial.datetime_start)
    params = [
        Param(mlflow_key(name), str(value)[:_MAX_PARAM_LENGTH])
        for name, value in trial.params.items()
    ]
    architecture = trial.user_attrs.get(ARCHITECTURE_ATTR)
    readable = readable_architecture(architecture)
    if readable is not None:
        params.append(Param("architecture", readable))
    curves = {
        mlflow_key(key[len(STEPS_ATTR_PREFIX) :]): points
        for key, points in sorted(trial.system_attrs.items())
        if key.startswith(STEPS_ATTR_PREFIX)
    }
    # An objective named like a curve (ValidationError's "val_error") goes at the curve's last
    # step with a later timestamp, so it ends the curve and is the run's latest value.
    metrics = [
        Metric(name, float(value), end, max((int(p[0]) for p in curves.get(name, ())), default=0))
        for name, value in zip(metric_names, trial.values or (), strict=False)
    ]
    if trial.duration is not None:
        metrics.append(Metric("duration_s", trial.duration.total_seconds(), end, 0))
    constraints = trial.constraints
    for name, value in constraints.items():
        metrics.append(Metric(f"constraint.{mlflow_key(name)}", float(value), end, 0))
    tags = [RunTag(STATE_TAG, trial.state.name)]
    if constraints:
        feasible = all(value <= 0 for value in constraints.values())
        tags.append(RunTag("optuna.feasible", str(feasible).lower()))
    reason = trial.user_attrs.get(FAILURE_ATTR, trial.system_attrs.get("fail_reason"))
    if reason is not None:
        tags.append(RunTag("optuna.fail_reason", _tag_value(reason)))
    for key, value in sorted(trial.system_attrs.items()):
        match = _SAMPLER_ATTR.match(key)
        if match is None or match.group(1) in SAMPLER_BOOKKEEPING:
            continue
        numbers = _numeric_leaves(mlflow_key(key), value)
        if numbers is not None:
            metrics.extend(Metric(name, number, end, 0) for name, number in numbers)
        else:
            tags.append(RunTag(mlflow_key(key), _tag_value(value)))
    tags.extend(user_tags(trial.user_attrs))
    for step, value in sorted(trial.intermediate_values.items()):
        metrics.append(Metric("intermediate_value", float(value), end, int(step)))
    skip = set(skip_steps)
    for name, points in curves.items():
        for step, value, timestamp in points:
            if (name, int(step)) not in skip:
                metrics.append(Metric(name, float(value), int(timestamp), int(step)))
    return TrialRecord(
        params=params,
        metrics=metrics,
        tags=tags,
        architecture=architecture if isinstance(architecture, dict) else None,
        status=RUN_STATUS[trial.state],
        end_time=end,
    )
