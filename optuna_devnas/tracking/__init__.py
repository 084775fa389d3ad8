"""Experiment tracking: per-step metrics, and every study and trial mirrored into MLflow.

- :func:`log_step`: training code reports a curve point; listeners receive it.
- :class:`MLflowTracker`: an Optuna callback and study context manager writing a parent run per
  study (the search's settings, hypervolume and best values, to compare searches) and a nested
  run per trial, one each however many workers start together; tracking failures warn
  (:class:`TrackingWarning`) and are caught up later, never failing the study.
- :func:`sync_study`: replay a study from its Optuna storage into MLflow without duplicates
  (the ``devnas mlflow-sync`` command).

MLflow is imported only when a tracker or a sync is used.
"""

from optuna_devnas._steps import add_step_listener, log_step, remove_step_listener
from optuna_devnas.tracking._mirror import SyncResult
from optuna_devnas.tracking._sync import sync_study
from optuna_devnas.tracking._tracker import (
    MLflowTracker,
    TrackingWarning,
    resolve_tracking_uri,
)

__all__ = [
    "MLflowTracker",
    "SyncResult",
    "TrackingWarning",
    "add_step_listener",
    "log_step",
    "remove_step_listener",
    "resolve_tracking_uri",
    "sync_study",
]
