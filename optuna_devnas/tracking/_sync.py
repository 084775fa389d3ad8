"""``sync_study``: replay an Optuna study from its storage into MLflow, idempotently.

Use it to fill MLflow after the fact: a study that ran without a tracker, on workers that could
not reach the tracking server, or while the server was down. Runs are matched by tags, so
syncing twice creates nothing new, and a study still running can be synced again later (its
running trials are written as far as they got, and completed on the next sync).
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses

import optuna

from optuna_devnas.tracking._mirror import StudyMirror, SyncResult
from optuna_devnas.tracking._repair import remove_duplicates
from optuna_devnas.tracking._requests import fail_fast
from optuna_devnas.tracking._tracker import resolve_tracking_uri

_REQUEST_TIMEOUT = 5  # seconds; with one retry a second later, 11 s at most for a dead server
_MAX_RETRIES = 1


def sync_study(
    storage: str | optuna.storages.BaseStorage,
    study_name: str,
    *,
    tracking_uri: str | None = None,
    experiment_name: str | None = None,
    metric_names: Sequence[str] | None = None,
    log_pareto_front: bool = True,
    hypervolume_bounds: Sequence[tuple[float, float]] | None = None,
) -> SyncResult:
    """Write every trial of study ``study_name`` in ``storage`` to MLflow, without duplicates.

    The study gets the same parent run and nested trial runs as with
    :class:`~optuna_devnas.tracking.MLflowTracker` (runs the tracker already wrote are found
    and completed, not copied). Duplicates that earlier versions left (several parent runs,
    several runs of one trial) are deleted first, one of each kept. The parent run is ended
    once no trial is running or waiting.

    Example:

        .. code-block:: python

            result = sync_study("sqlite:///search.db", "dpp", tracking_uri="http://mlflow:5000")
            print(result.created, result.updated, result.unchanged)

    Args:
        storage:
            The study's Optuna storage: a URL such as ``"sqlite:///search.db"`` or a storage.
        study_name:
            Name of the study in ``storage``.
        tracking_uri:
            MLflow tracking URI. Default ``None``: MLflow's current one (``sqlite:///mlflow.db``
            in the working directory unless ``MLFLOW_TRACKING_URI`` says otherwise).
        experiment_name:
            MLflow experiment. Default ``None``: the study's name.
        metric_names:
            Names of the objective values when the study has no ``metric_names``.
        log_pareto_front:
            Log the Pareto front and tag its members. Default ``True``.
        hypervolume_bounds:
            ``(best, worst)`` per objective, normalising the parent run's ``hypervolume`` (see
            :class:`~optuna_devnas.tracking.MLflowTracker`). Default ``None``: the bounds
            stored with the study by an earlier tracker or sync, if any.

    Returns:
        A :class:`SyncResult` with the experiment, the parent run, the counts of trial runs
        created, updated and unchanged, and of duplicate runs deleted.
    """
    if not isinstance(study_name, str) or not study_name:
        raise ValueError(f"Got study_name={study_name!r}, but expected a non-empty string.")
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise ValueError(
            f"Got study_name={study_name!r}, but the storage has only {sorted(names)!r}."
        ) from None
    # A dead tracking server fails the first request in seconds, not MLflow's minutes of retries.
    with fail_fast(timeout=_REQUEST_TIMEOUT, max_retries=_MAX_RETRIES):
        from mlflow import MlflowClient

        mirror = StudyMirror(
            MlflowClient(resolve_tracking_uri(tracking_uri)),
            study,
            experiment_name=experiment_name or study_name,
            metric_names=metric_names,
            hypervolume_bounds=hypervolume_bounds,
        )
        deleted = remove_duplicates(mirror)
        result = dataclasses.replace(mirror.sync(), deleted=deleted)
        if log_pareto_front:
            mirror.parent.log_pareto_front()
        mirror.parent.finish()  # stays RUNNING while a trial is running or waiting
    return result
