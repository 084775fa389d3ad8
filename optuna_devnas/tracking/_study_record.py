"""What a whole study becomes on its MLflow parent run: the search's settings and its progress.

A pure translation from a study to MLflow params and metrics (no client), so that searches in
one experiment can be compared in the runs table and the chart view:

- params: the sampler (``sampler``) and its scalar settings (``sampler.<name>``), each
  objective's direction (``objective.<name>``), the search space (``space.<param>``, each
  parameter's distribution), the configuration of ``devnas search`` (``search.<key>``), and the
  hypervolume bounds (``hypervolume.bounds``, ``"val_error 0 to 1; size 0 to 4e+05"``);
- metrics, with step = the number of finished (complete, pruned or failed) trials: the
  hypervolume of the feasible complete trials and the best value of each objective
  (``best.<name>``) after each finished trial, and the count of trials per state
  (``n_complete``, ``n_pruned``, ``n_fail``, ``n_running``, ``n_waiting``).

The hypervolume is normalised by fixed bounds that the user gives per objective, ``(best,
worst)`` in the objective's own units: each value ``v`` is scaled to ``(v - best) / (worst -
best)`` (0 at the best bound, 1 at the worst, whatever the direction), and the hypervolume is
that of the scaled points against the reference point 1 in every coordinate, points beyond it
adding nothing. It is the dominated fraction of the box between the bounds, from 0 to 1, and
because the bounds do not depend on what a study found, two studies of one problem with the
same bounds can be compared by it.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_devnas.tracking._records import millis, mlflow_key

if TYPE_CHECKING:
    from mlflow.entities import Metric

Bounds = list[tuple[float, float]]
"""Per objective, ``(best, worst)`` in the objective's units."""

CONFIG_ATTR = "devnas:config"  # the study user attribute of ``devnas search``'s configuration
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
_MAX_SETTINGS = 50
_MAX_PARAM_LENGTH = 6000


def bound_pairs(bounds: Any) -> Bounds:
    """``bounds`` as a list of finite ``(best, worst)`` float pairs with ``best != worst``."""
    try:
        pairs = [(float(best), float(worst)) for best, worst in bounds]
    except (TypeError, ValueError):
        raise ValueError(
            f"Got hypervolume_bounds={bounds!r}, but expected one (best, worst) pair of numbers "
            "per objective."
        ) from None
    for best, worst in pairs:
        if not (math.isfinite(best) and math.isfinite(worst)) or best == worst:
            raise ValueError(
                f"Got hypervolume_bounds={bounds!r}, but ({best}, {worst}) is not a pair of "
                "distinct finite numbers."
            )
    return pairs


def check_bounds(bounds: Any, directions: Sequence[optuna.study.StudyDirection]) -> Bounds:
    """:func:`bound_pairs`, one per objective, each ``best`` on its objective's better side."""
    pairs = bound_pairs(bounds)
    if len(pairs) != len(directions):
        raise ValueError(
            f"Got hypervolume_bounds={bounds!r}, but the study has {len(directions)} objective(s)."
        )
    for (best, worst), direction in zip(pairs, directions, strict=True):
        if (best > worst) == (direction == optuna.study.StudyDirection.MINIMIZE):
            raise ValueError(
                f"Got hypervolume_bounds={bounds!r}, but ({best}, {worst}) is not (best, worst) "
                f"for an objective to {direction.name.lower()}."
            )
    return pairs


def normalized_hypervolume(values: np.ndarray, bounds: Bounds) -> float:
    """Hypervolume of ``values`` (``n x m``, objective units) scaled by ``bounds`` (see the
    module docstring), from 0 to 1. Uses BoTorch's ``Hypervolume``, as the sampler does."""
    best = np.array([b for b, _ in bounds])
    worst = np.array([w for _, w in bounds])
    scaled = (np.asarray(values, dtype=np.float64).reshape(-1, len(bounds)) - best) / (
        worst - best
    )  # (n, m), 0 = best bound, 1 = worst bound, smaller is better
    scaled = scaled[np.all(scaled < 1.0, axis=1)]
    if len(scaled) == 0:
        return 0.0
    if scaled.shape[1] == 1:
        return float(1.0 - max(scaled.min(), 0.0))
    # Here, not at the top: the tracker runs without torch until a hypervolume is needed.
    from botorch.utils.multi_objective.hypervolume import Hypervolume
    import torch

    # BoTorch maximizes: negate the points and the reference point. Points better than the
    # best bound count as on it, so the value stays a fraction of the box.
    points = -torch.as_tensor(np.maximum(scaled, 0.0))
    return float(Hypervolume(torch.full((scaled.shape[1],), -1.0, dtype=torch.float64)).compute(
        points
    ))  # fmt: skip


def study_params(
    study: optuna.Study, metric_names: Sequence[str], sampler: Any, bounds: Bounds | None
) -> dict[str, str]:
    """The search's settings as MLflow params (keys and values MLflow accepts)."""
    decider = getattr(sampler, "sampler", sampler)  # ``devnas`` commands wrap the sampler
    params = {"sampler": type(decider).__name__}
    settings = [
        (name.lstrip("_"), value)
        for name, value in getattr(decider, "__dict__", {}).items()
        if isinstance(value, bool | int | float | str) and "cache" not in name
    ]
    for name, value in settings[:_MAX_SETTINGS]:
        params[f"sampler.{mlflow_key(name)}"] = str(value)
    for name, direction in zip(metric_names, study.directions, strict=True):
        params[f"objective.{name}"] = direction.name.lower()
    config = study.user_attrs.get(CONFIG_ATTR)
    if isinstance(config, dict):
        for key, value in sorted(config.items()):
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            params[f"search.{mlflow_key(key)}"] = text
    for trial in study.get_trials(deepcopy=False):
        for name, distribution in trial.distributions.items():
            params.setdefault(f"space.{mlflow_key(name)}", str(distribution))
    if bounds is not None:
        params["hypervolume.bounds"] = bounds_text(metric_names, bounds)
    return {key: value[:_MAX_PARAM_LENGTH] for key, value in params.items()}


def bounds_text(metric_names: Sequence[str], bounds: Bounds) -> str:
    """``"val_error 0 to 1; size 0 to 4e+05"``: (best, worst) per objective, for a person."""
    return "; ".join(
        f"{name} {best:g} to {worst:g}"
        for name, (best, worst) in zip(metric_names, bounds, strict=True)
    )


def _feasible(trial: FrozenTrial) -> bool:
    return all(value <= 0 for value in trial.constraints.values())


def progress_metrics(
    study: optuna.Study,
    metric_names: Sequence[str],
    bounds: Bounds | None,
    *,
    history: bool = True,
) -> list[Metric]:
    """Hypervolume and best values after each finished trial (only the last point unless
    ``history``), and the counts per state now. Timestamps of the curve points are the
    completion times of the trials, so writing them again stores nothing new."""
    from mlflow.entities import Metric

    trials = study.get_trials(deepcopy=False)
    finished = sorted(
        (t for t in trials if t.state in _FINISHED and t.datetime_complete is not None),
        key=lambda t: (t.datetime_complete, t.number),
    )
    signs = np.array([1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0
                      for d in study.directions])  # fmt: skip
    metrics: list[Metric] = []
    points: list[list[float]] = []
    first = len(finished) - 1 if not history else 0
    for step, trial in enumerate(finished, start=1):
        if trial.state == TrialState.COMPLETE and trial.values is not None and _feasible(trial):
            points.append(list(trial.values))
        if step - 1 < first or not points:
            continue
        stamp = millis(trial.datetime_complete)
        values = np.array(points)  # (n, m)
        best = (signs * values).min(axis=0) * signs  # the best value of each objective
        for name, value in zip(metric_names, best, strict=True):
            metrics.append(Metric(f"best.{name}", float(value), stamp, step))
        if bounds is not None:
            metrics.append(
                Metric("hypervolume", normalized_hypervolume(values, bounds), stamp, step)
            )
    now = millis(None)
    for state in (*_FINISHED, TrialState.RUNNING, TrialState.WAITING):
        count = sum(1 for t in trials if t.state == state)
        metrics.append(Metric(f"n_{state.name.lower()}", count, now, len(finished)))
    return metrics
