"""The Pareto front of a study as a table (CSV text) and a figure, for the study's parent run.

Which trials are on the front is Optuna's answer (``study.best_trials``, which honours
directions and constraints); this module only lays the answer out. The figure is drawn on a
bare :class:`matplotlib.figure.Figure` rather than through ``pyplot`` or Optuna's matplotlib
plots, because those go through pyplot's global figure manager and backend, which is neither
thread-safe (trackers run in ``n_jobs`` threads) nor free of side effects in a user's notebook.
"""

from __future__ import annotations

from collections.abc import Sequence
import csv
import io
import itertools
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from optuna.trial import FrozenTrial

MAX_PANELS = 6
"""At most this many objective pairs are drawn (all pairs of up to 4 objectives)."""


def front_rows(
    trials: Sequence[FrozenTrial],
    metric_names: Sequence[str],
    run_ids: dict[int, str],
    readable: dict[int, str],
) -> list[dict[str, Any]]:
    """One row per trial of ``trials`` (the front): number, run id, values, architecture,
    constraints and parameters, with the same columns in every row."""
    param_names = sorted({name for trial in trials for name in trial.params})
    constraint_names = sorted({name for trial in trials for name in trial.constraints})
    rows = []
    for trial in sorted(trials, key=lambda t: t.number):
        row: dict[str, Any] = {"trial": trial.number, "run_id": run_ids.get(trial.number, "")}
        row.update(zip(metric_names, trial.values or (), strict=False))
        row["architecture"] = readable.get(trial.number, "")
        for name in constraint_names:
            row[f"constraint.{name}"] = trial.constraints.get(name, "")
        for name in param_names:
            row[name] = trial.params.get(name, "")
        rows.append(row)
    return rows


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """``rows`` as CSV text with a header line (empty string for no rows)."""
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _axis_label(index: int, names: Sequence[str], directions: Sequence[str] | None) -> str:
    if index < 0:
        return "trial"
    if directions is None:
        return names[index]
    better = "lower" if directions[index] == "minimize" else "higher"
    return f"{names[index]} ({better} is better)"


def _draw_panel(
    axis: Any,
    x: np.ndarray,
    y: np.ndarray,
    on_front: np.ndarray,
    feasible: np.ndarray,
    numbers: np.ndarray | None,
) -> None:
    """One panel: trials, infeasible ones greyed, the front in red (labelled by number)."""
    other = ~on_front
    axis.scatter(x[other & feasible], y[other & feasible], c="tab:blue", s=18, label="trial")
    if (other & ~feasible).any():
        axis.scatter(
            x[other & ~feasible], y[other & ~feasible], c="0.6", marker="x", s=18,
            label="infeasible",
        )  # fmt: skip
    axis.scatter(x[on_front], y[on_front], c="tab:red", s=30, label="Pareto front")
    if numbers is not None:
        for k in np.flatnonzero(on_front):
            axis.annotate(
                f"#{numbers[k]}", (x[k], y[k]), xytext=(4, 3), textcoords="offset points",
                fontsize=7, color="tab:red",
            )  # fmt: skip
    axis.grid(alpha=0.3)


def plot_front(
    values: np.ndarray,
    on_front: np.ndarray,
    feasible: np.ndarray,
    metric_names: Sequence[str],
    title: str,
    *,
    numbers: Sequence[int] | None = None,
    directions: Sequence[str] | None = None,
) -> Figure:
    """Scatter of the trials' objective values with the front highlighted.

    Args:
        values:
            Objective values of the completed trials, ``(n_trials, n_objectives)``.
        on_front:
            Boolean mask ``(n_trials,)``: the trial is on the Pareto front.
        feasible:
            Boolean mask ``(n_trials,)``: the trial satisfies its constraints.
        metric_names:
            One axis label per objective.
        title:
            Figure title (the study name).
        numbers:
            Trial numbers ``(n_trials,)``, written next to the front's points (the runs are
            named ``<study> #<number>``). Default ``None``: no labels.
        directions:
            ``"minimize"`` or ``"maximize"`` per objective; each axis then says which way is
            better. Default ``None``: not said.

    One objective: value against trial order, the best trials marked. Two or more: one panel per
    pair of objectives (at most :data:`MAX_PANELS`), three to a row, so that three objectives
    (three panels) stay readable.
    """
    from matplotlib.figure import Figure

    values = np.asarray(values, dtype=float)
    n_objectives = values.shape[1]
    if n_objectives == 1:
        pairs: list[tuple[int, int]] = [(-1, 0)]
    else:
        pairs = list(itertools.combinations(range(n_objectives), 2))[:MAX_PANELS]
    columns = min(3, len(pairs))
    rows = -(-len(pairs) // columns)
    figure = Figure(figsize=(4.8 * columns, 4.2 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis in axes[len(pairs) :]:
        figure.delaxes(axis)
    order = np.arange(len(values)) if numbers is None else np.asarray(numbers)

    for axis, (i, j) in zip(axes, pairs, strict=False):
        x = order if i < 0 else values[:, i]
        _draw_panel(axis, x, values[:, j], on_front, feasible, None if numbers is None else order)
        axis.set_xlabel(_axis_label(i, metric_names, directions))
        axis.set_ylabel(_axis_label(j, metric_names, directions))
    axes[0].legend(loc="best", fontsize="small")
    figure.suptitle(title)
    return figure
