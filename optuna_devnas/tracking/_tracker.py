"""``MLflowTracker``: an Optuna callback that mirrors a study into MLflow as it runs.

Use it when a search should be comparable in the MLflow UI while it runs. The tracker adds
failure handling on top of :class:`~optuna_devnas.tracking._mirror.StudyMirror`: a tracking
failure (server down, timeout, locked database) never fails a trial or the study. The first
failure warns once (:class:`TrackingWarning`); the tracker then stays quiet, retries at most
every ``retry_interval`` seconds, and on success catches up every trial it missed. Training
curves from :func:`~optuna_devnas.tracking.log_step` are written to the trial's storage as well,
so nothing is lost even when MLflow is down for the whole study: ``devnas mlflow-sync`` (or
:func:`~optuna_devnas.tracking.sync_study`) replays the study later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
import contextlib
import functools
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any
import warnings

import optuna
from optuna.trial import FrozenTrial

from optuna_devnas._optuna_storage import set_trial_system_attr, storage_of, study_id_of
from optuna_devnas._steps import add_step_listener, remove_step_listener
from optuna_devnas.tracking._records import (
    FAILURE_ATTR,
    STEPS_ATTR_PREFIX,
    millis,
    objective_names,
)
from optuna_devnas.tracking._requests import fail_fast
from optuna_devnas.tracking._study_record import bound_pairs

if TYPE_CHECKING:
    from optuna_devnas.tracking._mirror import StudyMirror

_logger = logging.getLogger(__name__)


_StudyKey = tuple[int, int]
_Objective = Callable[[optuna.Trial], Any]


def _study_key(study: optuna.Study) -> _StudyKey:
    # Two studies may share a name; a storage and a study id tell them apart.
    return (id(storage_of(study)), study_id_of(study))


class TrackingWarning(UserWarning):
    """MLflow could not be written to; the study goes on and the tracker catches up later."""


def resolve_tracking_uri(tracking_uri: str | None) -> str:
    """``tracking_uri``, or MLflow's current one (``MLFLOW_TRACKING_URI``, else the SQLite file
    ``mlflow.db`` in the working directory), with relative SQLite paths made absolute so a
    later change of directory does not move the store."""
    import mlflow

    uri = mlflow.get_tracking_uri() if tracking_uri is None else str(tracking_uri)
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and ":memory:" not in uri:
        uri = prefix + os.path.abspath(uri[len(prefix) :])
    return uri


class MLflowTracker:
    """Mirror Optuna studies into MLflow: a parent run per study, a nested run per trial.

    Each trial run holds the trial's parameters, the architecture (param ``architecture`` and
    artifact ``architecture.json``), every objective value under its metric name, duration,
    constraint values, sampler state such as DPPSampler's stage and surrogate prediction, and
    the training curves sent to :func:`~optuna_devnas.tracking.log_step`, and the trial's user
    attributes as tags. The parent run gets the search's settings as params (sampler and its
    settings, directions, search space) and, after each trial, its progress as metrics (a
    hypervolume normalised by ``hypervolume_bounds``, the best value of each objective, counts
    per state), so that searches compare in MLflow's runs table. When a tracked study ends, the
    parent run gets the Pareto front (``pareto_front.csv`` and ``pareto_front.png``) and front
    members are tagged ``pareto=true``. It stays ``RUNNING`` while other workers still run
    trials of the study; workers agree on one parent run and one run per trial through the
    study's storage. :meth:`track_in_mlflow` lets the objective log into its trial's run.

    Example:

        .. code-block:: python

            tracker = MLflowTracker(experiment_name="nas")
            with tracker.track(study):
                study.optimize(objective, n_trials=50, callbacks=[tracker])

    Used only as a callback (without :meth:`track`), the tracker logs each finished trial but
    neither per-step curves nor the Pareto front; call :meth:`log_pareto_front` and
    :meth:`finish` yourself. For ask-and-tell loops, call ``tracker(study, frozen_trial)``.

    Args:
        tracking_uri:
            MLflow tracking URI, e.g. ``"http://127.0.0.1:5000"`` or
            ``"sqlite:///mlflow.db"``. Default ``None``: MLflow's current URI (the
            ``MLFLOW_TRACKING_URI`` variable, else ``sqlite:///mlflow.db`` in the working
            directory at construction).
        experiment_name:
            MLflow experiment (created if missing). Default ``None``: the study's name.
        metric_names:
            Names of the objective values, used when the study has no
            ``study.metric_names``. Default ``None``: ``value`` or ``values_<i>``.
        log_pareto_front:
            Log the Pareto front when a tracked study ends. Default ``True``.
        retry_interval:
            Seconds between attempts to reach MLflow after a failure. Default 30.
        request_timeout:
            Seconds an HTTP request to a tracking server may take. Default 5.
        max_retries:
            Retries of a failed HTTP request (one second apart). Default 1. Both settings apply
            only while the tracker calls MLflow and only where the user has not set
            ``MLFLOW_HTTP_REQUEST_TIMEOUT`` / ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``.
        hypervolume_bounds:
            One ``(best, worst)`` pair per objective, in the objective's units (for an error
            rate to minimize ``(0.0, 1.0)``, for an accuracy to maximize ``(1.0, 0.0)``). The
            parent run's ``hypervolume`` is that of the values scaled to 0 at ``best`` and 1 at
            ``worst``: the dominated fraction of the box, comparable between studies with the
            same bounds. The first bounds given for a study are stored with it and kept.
            Default ``None``: no hypervolume, unless the study has stored bounds.
    """

    def __init__(
        self,
        *,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        metric_names: Sequence[str] | None = None,
        log_pareto_front: bool = True,
        retry_interval: float = 30.0,
        request_timeout: int = 5,
        max_retries: int = 1,
        hypervolume_bounds: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        if tracking_uri is not None and (not isinstance(tracking_uri, str) or not tracking_uri):
            raise ValueError(f"Got tracking_uri={tracking_uri!r}, but expected a URI or None.")
        if experiment_name is not None and (
            not isinstance(experiment_name, str) or not experiment_name.strip()
        ):
            raise ValueError(
                f"Got experiment_name={experiment_name!r}, but expected a non-empty string."
            )
        if metric_names is not None and (
            isinstance(metric_names, str) or not all(isinstance(n, str) for n in metric_names)
        ):
            raise ValueError(f"Got metric_names={metric_names!r}, but expected a list of str.")
        if not retry_interval >= 0:
            raise ValueError(f"Got retry_interval={retry_interval!r}, but expected >= 0.")
        if not isinstance(request_timeout, int) or request_timeout < 1:
            raise ValueError(
                f"Got request_timeout={request_timeout!r}, but expected a positive integer."
            )
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"Got max_retries={max_retries!r}, but expected an integer >= 0.")
        self.hypervolume_bounds = (
            None if hypervolume_bounds is None else bound_pairs(hypervolume_bounds)
        )
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.experiment_name = experiment_name
        self.metric_names = None if metric_names is None else list(metric_names)
        self.log_pareto_front_at_end = log_pareto_front
        self.retry_interval = float(retry_interval)
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self._client: Any = None
        self._lock = threading.RLock()
        self._mirrors: dict[_StudyKey, StudyMirror] = {}
        self._behind: set[_StudyKey] = set()  # studies with trials MLflow may be missing
        self._offline_since: float | None = None
        self._next_attempt = 0.0
        self._listening = 0
        self._steps: dict[tuple[_StudyKey, int, str], list[list[float]]] = {}  # by trial number
        self._tracking: dict[_StudyKey, int] = {}  # studies inside track(), how many times

    # -- public API ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def track(self, study: optuna.Study) -> Iterator[MLflowTracker]:
        """Track ``study`` within the block: open its parent run (catching up trials already in
        the study), send per-step metrics to the trial runs, and at the end catch up, log the
        Pareto front and end the parent run (``FINISHED``, or ``KILLED`` on an exception).
        Pass the tracker to ``study.optimize(..., callbacks=[tracker])`` inside the block."""
        mirror = self._mirror(study)

        def start() -> None:
            mirror.sync()
            mirror.parent.finish("RUNNING")

        if self._attempt(start, force=True):
            self._recovered(mirror)
        key = _study_key(study)
        with self._lock:
            if self._listening == 0:
                add_step_listener(self._on_step)
            self._listening += 1
            self._tracking[key] = self._tracking.get(key, 0) + 1
        status = "FINISHED"
        try:
            yield self
        except BaseException:
            status = "KILLED"
            raise
        finally:
            with self._lock:
                self._listening -= 1
                if self._listening == 0:
                    remove_step_listener(self._on_step)
                self._tracking[key] -= 1
                if self._tracking[key] == 0:
                    del self._tracking[key]
            self.finish(study, status=status, log_pareto_front=self.log_pareto_front_at_end)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Optuna callback: write the finished ``trial`` (or catch up, after a failure)."""
        mirror = self._mirror(study)
        with self._lock:
            done = (_study_key(study), trial.number)
            for key in [k for k in self._steps if k[:2] == done]:
                del self._steps[key]
            behind = self._offline_since is not None or _study_key(study) in self._behind
            running = _study_key(study) in self._tracking
        if behind:
            self.catch_up(study)
        elif self._attempt(lambda: mirror.write_trial(trial)):
            self._attempt(lambda: mirror.parent.progress(running=running))

    def catch_up(self, study: optuna.Study, *, force: bool = False) -> bool:
        """Write every trial MLflow is missing; return whether MLflow is up to date.

        After a failure this is attempted at most every ``retry_interval`` seconds unless
        ``force`` is set.
        """
        mirror = self._mirror(study)
        if self._attempt(mirror.sync, force=force):
            self._recovered(mirror)
            return True
        return False

    def log_pareto_front(self, study: optuna.Study) -> list[int] | None:
        """Log the Pareto front of ``study`` now; return the front's trial numbers (``None`` if
        MLflow could not be written)."""
        mirror = self._mirror(study)
        front: list[int] = []

        def log() -> None:
            front.extend(mirror.parent.log_pareto_front())

        return front if self._attempt(log, force=True) else None

    def finish(
        self, study: optuna.Study, *, status: str = "FINISHED", log_pareto_front: bool = True
    ) -> bool:
        """Catch up, optionally log the Pareto front, and end the parent run with ``status``.

        Returns whether MLflow is now up to date. If not, warns how to replay the study later.
        """
        mirror = self._mirror(study)
        done = self.catch_up(study, force=True)
        if done and log_pareto_front:
            done = self.log_pareto_front(study) is not None
        if done:
            done = self._attempt(lambda: mirror.parent.finish(status), force=True)
        if not done:
            warnings.warn(
                f"MLflow at {self.tracking_uri} is missing part of study "
                f"{study.study_name!r}; the Optuna storage has it all. Replay it with "
                f"`devnas mlflow-sync --storage <storage URL> --study {study.study_name} "
                f"--tracking-uri {self.tracking_uri}`.",
                TrackingWarning,
                stacklevel=3,
            )
        return done

    def track_in_mlflow(self) -> Callable[[_Objective], _Objective]:
        """Decorate an objective so that it runs inside its trial's MLflow run, and a failure
        is recorded.

        Inside, ``mlflow.log_metric``, ``mlflow.log_param``, ``mlflow.log_artifact``,
        ``mlflow.pytorch.log_model`` and the like write to the trial's run (MLflow's active
        run; the tracker sets MLflow's tracking URI to its own, as optuna-integration's
        ``MLflowCallback.track_in_mlflow`` does). An exception from the objective is recorded
        in the trial as the user attribute ``devnas:failure`` (``"ValueError: ..."``, Optuna 5
        keeps no failure reason) and reaches MLflow as the tag ``optuna.fail_reason``. If
        MLflow cannot be reached the objective runs anyway, without an active run.

        Example:

            .. code-block:: python

                @tracker.track_in_mlflow()
                def objective(trial):
                    x = trial.suggest_float("x", 0, 1)
                    mlflow.log_metric("x_squared", x**2)
                    return x
        """

        def decorate(objective: _Objective) -> _Objective:
            @functools.wraps(objective)
            def run(trial: optuna.Trial) -> Any:
                with self._active_run(trial):
                    try:
                        return objective(trial)
                    except optuna.TrialPruned:
                        raise
                    except Exception as error:
                        text = " ".join(str(error).split())
                        trial.set_user_attr(FAILURE_ATTR, f"{type(error).__name__}: {text}"[:300])
                        raise

            return run

        return decorate

    def parent_run_id(self, study: optuna.Study) -> str | None:
        """The MLflow run id of ``study``'s parent run, once created."""
        mirror = self._mirrors.get(_study_key(study))
        return None if mirror is None else mirror.parent_run_id

    # -- internals -----------------------------------------------------------------------------

    def _mirror(self, study: optuna.Study) -> StudyMirror:
        with self._lock:
            mirror = self._mirrors.get(_study_key(study))
            if mirror is None:
                objective_names(study, self.metric_names)  # bad names fail here, not in MLflow
                if self._client is None:
                    from mlflow import MlflowClient

                    self._client = MlflowClient(self.tracking_uri)
                from optuna_devnas.tracking._mirror import StudyMirror

                mirror = StudyMirror(
                    self._client,
                    study,
                    experiment_name=self.experiment_name or study.study_name,
                    metric_names=self.metric_names,
                    parent_tags={"optuna.sampler": _sampler_name(study.sampler)},
                    hypervolume_bounds=self.hypervolume_bounds,
                )
                self._mirrors[_study_key(study)] = mirror
            return mirror

    @contextlib.contextmanager
    def _active_run(self, trial: optuna.Trial) -> Iterator[None]:
        """MLflow's active run is the trial's run within the block, when MLflow can be reached."""
        import mlflow

        mirror = self._mirror(trial.study)

        def start() -> None:
            run_id = mirror.trial_run_id(trial)
            mlflow.set_tracking_uri(self.tracking_uri)
            # Nested under whatever the caller has active.
            mlflow.start_run(run_id=run_id, nested=True)

        started = self._attempt(start)
        try:
            yield
        finally:
            if started:
                # Left RUNNING: the callback sets the final status from the trial's state.
                self._attempt(lambda: mlflow.end_run("RUNNING"))

    def _attempt(self, action: Callable[[], object], *, force: bool = False) -> bool:
        """Run ``action`` against MLflow; on any failure go offline instead of raising."""
        with self._lock:
            if self._offline_since is not None and not force:
                if time.monotonic() < self._next_attempt:
                    return False
        try:
            with fail_fast(timeout=self.request_timeout, max_retries=self.max_retries):
                action()
        except Exception as error:  # noqa: BLE001 - any tracking failure must spare the study
            self._failed(error)
            return False
        return True

    def _failed(self, error: Exception) -> None:
        with self._lock:
            first = self._offline_since is None
            if first:
                self._offline_since = time.monotonic()
            self._next_attempt = time.monotonic() + self.retry_interval
            self._behind.update(self._mirrors)
        if first:
            warnings.warn(
                f"Could not write to MLflow at {self.tracking_uri} "
                f"({type(error).__name__}: {str(error)[:300]}). The study goes on; the tracker "
                f"retries every {self.retry_interval:g} s and then catches up.",
                TrackingWarning,
                stacklevel=4,
            )

    def _recovered(self, mirror: StudyMirror) -> None:
        with self._lock:
            self._behind.discard(_study_key(mirror.study))
            if self._offline_since is not None:
                _logger.info(
                    "MLflow at %s is reachable again after %.0f s; caught up study %r.",
                    self.tracking_uri,
                    time.monotonic() - self._offline_since,
                    mirror.study.study_name,
                )
                self._offline_since = None

    def _on_step(self, trial: optuna.Trial, key: str, value: float, step: int) -> None:
        """Step listener: record the point in the trial's storage, then send it to MLflow."""
        if not isinstance(trial, optuna.Trial):
            return
        study = _study_key(trial.study)
        mirror = self._mirrors.get(study)
        if mirror is None:  # a study this tracker does not track
            return
        timestamp = millis(None)
        storage_key = (study, trial.number, key)
        with self._lock:
            points = self._steps.setdefault(storage_key, [])
            points.append([step, value, timestamp])
            points = list(points)
        try:
            # The storage is the record: a later sync replays the curve from here.
            set_trial_system_attr(trial.study, trial, STEPS_ATTR_PREFIX + key, points)
        except Exception as error:  # noqa: BLE001 - never fail the trial over tracking
            warnings.warn(
                f"Could not record {key!r} step {step} of trial {trial.number}: {error}",
                TrackingWarning,
                stacklevel=3,
            )
        with self._lock:
            if self._offline_since is not None or study in self._behind:
                return
        self._attempt(lambda: mirror.log_step(trial, key, value, step, timestamp))


def _sampler_name(sampler: Any) -> str:
    """The class name of the sampler that decides (``devnas`` commands wrap it in ``sampler``)."""
    return type(getattr(sampler, "sampler", sampler)).__name__
