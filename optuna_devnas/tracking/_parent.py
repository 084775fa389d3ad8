"""A study's parent run in MLflow: the search's settings and progress, its front, its status.

:class:`ParentRun` writes what compares whole searches (see
:mod:`~optuna_devnas.tracking._study_record`) and the Pareto front onto the parent run that
:class:`~optuna_devnas.tracking._mirror.StudyMirror` found or created, and decides the run's
status: ``RUNNING`` while any trial of the study is running or waiting, so that a worker which
ends while others still add trials does not mark the study finished; the last worker to end
ends it.
"""

from __future__ import annotations

from collections.abc import Sequence
import threading
from typing import TYPE_CHECKING
import warnings

import numpy as np
from optuna.trial import TrialState

from optuna_devnas._optuna_storage import study_system_attrs
from optuna_devnas.tracking import _pareto, _study_record
from optuna_devnas.tracking._claims import claim
from optuna_devnas.tracking._records import ARCHITECTURE_ATTR, millis, readable_architecture

if TYPE_CHECKING:
    from optuna_devnas.tracking._mirror import StudyMirror

BOUNDS_ATTR = "devnas:mlflow_hypervolume_bounds"
"""Study system attribute: the ``(best, worst)`` bounds of the hypervolume, first writer wins."""


class ParentRun:
    """Writes the parent run of ``mirror``'s study.

    Args:
        mirror:
            The study's mirror (its client, study, metric names and trial runs).
        hypervolume_bounds:
            ``(best, worst)`` per objective, normalising the hypervolume; ``None``: the bounds
            stored with the study, if any.
    """

    def __init__(
        self,
        mirror: StudyMirror,
        *,
        hypervolume_bounds: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        self.mirror = mirror
        directions = mirror.study.directions
        self._bounds = (
            None
            if hypervolume_bounds is None
            else _study_record.check_bounds(hypervolume_bounds, directions)
        )
        self._params: set[str] | None = None  # keys the parent run has
        self._warned_bounds = False
        self._lock = threading.Lock()

    def _id(self) -> str:
        return self.mirror.parent_run_id or self.mirror.connect()

    def log_pareto_front(self) -> list[int]:
        """Log the front as ``pareto_front.csv`` and ``pareto_front.png`` on the parent run and
        tag each trial run ``pareto=true`` or ``false``; return the front's trial numbers."""
        complete = self.mirror.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            return []
        parent = self._id()
        front = sorted(trial.number for trial in self.mirror.study.best_trials)
        members = set(front)
        readable = {t.number: readable_architecture(t.user_attrs.get(ARCHITECTURE_ATTR)) or ""
                    for t in complete if t.number in members}  # fmt: skip
        rows = _pareto.front_rows(
            [t for t in complete if t.number in members],
            self.mirror.metric_names,
            self.mirror.run_ids(),
            readable,
        )
        self.mirror.client.log_text(parent, _pareto.rows_to_csv(rows), "pareto_front.csv")
        figure = _pareto.plot_front(
            np.array([t.values for t in complete]),
            np.array([t.number in members for t in complete]),
            np.array([all(c <= 0 for c in t.constraints.values()) for t in complete]),
            self.mirror.metric_names,
            self.mirror.study.study_name,
            numbers=[t.number for t in complete],
            directions=[d.name.lower() for d in self.mirror.study.directions],
        )
        self.mirror.client.log_figure(parent, figure, "pareto_front.png")
        last = max((t.datetime_complete for t in complete if t.datetime_complete), default=None)
        self.mirror.client.log_metric(
            parent, "pareto_front_size", len(front), timestamp=millis(last), step=len(complete)
        )
        self.mirror.tag_pareto([t.number for t in complete], members)
        return front

    def log_study(self, *, history: bool = True) -> None:
        """Log the search's settings and progress on the parent run (see
        :mod:`~optuna_devnas.tracking._study_record`): params not logged yet (MLflow keeps a
        param's first value), the hypervolume and best-value curves (only their last point
        unless ``history``) and the counts per state."""
        parent = self._id()
        from mlflow.entities import Param

        with self._lock:
            if self._params is None:
                self._params = set(self.mirror.client.get_run(parent).data.params)
            bounds = self.hypervolume_bounds()
            wanted = _study_record.study_params(
                self.mirror.study, self.mirror.metric_names, self.mirror.study.sampler, bounds
            )
            new = [Param(k, v) for k, v in wanted.items() if k not in self._params]
            for start in range(0, len(new), 100):
                self.mirror.client.log_batch(parent, params=new[start : start + 100])
            self._params.update(param.key for param in new)
        metrics = _study_record.progress_metrics(
            self.mirror.study, self.mirror.metric_names, bounds, history=history
        )
        for start in range(0, len(metrics), 1000):
            self.mirror.client.log_batch(parent, metrics=metrics[start : start + 1000])

    def progress(self, *, running: bool) -> None:
        """After a trial: log the study's latest progress point, and mark the parent run
        ``RUNNING`` if ``running`` (a worker that joins after another ended the run)."""
        self.log_study(history=False)
        if running:
            self.mirror.client.update_run(self._id(), status="RUNNING")

    def hypervolume_bounds(self) -> _study_record.Bounds | None:
        """The bounds normalising the study's hypervolume: the first given to any tracker or
        sync of the study, kept in its storage so that every worker uses the same."""
        study = self.mirror.study
        stored = study_system_attrs(study).get(BOUNDS_ATTR)
        if stored is None and self._bounds is not None:
            stored = claim(study, BOUNDS_ATTR, self._bounds)
        if stored is None:
            return None
        bounds = _study_record.check_bounds(stored, study.directions)
        if self._bounds is not None and bounds != self._bounds and not self._warned_bounds:
            self._warned_bounds = True
            warnings.warn(
                f"Got hypervolume_bounds={self._bounds!r}, but study {study.study_name!r} "
                f"already normalises its hypervolume by {bounds!r}; "
                "keeping those, so that its values stay comparable.",
                stacklevel=2,
            )
        return bounds

    def finish(self, status: str = "FINISHED") -> None:
        """Log the study's settings and progress on the parent run and end it with ``status``,
        unless a trial is still running or waiting (another worker's): then it stays
        ``RUNNING``, and the last worker to finish ends it."""
        parent = self._id()
        self.log_study(history=True)
        trials = self.mirror.study.get_trials(deepcopy=False)
        active = any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
        last = max((t.datetime_complete for t in trials if t.datetime_complete), default=None)
        if status == "RUNNING" or active:
            self.mirror.client.update_run(parent, status="RUNNING")
        else:
            self.mirror.client.set_terminated(parent, status, end_time=millis(last))
