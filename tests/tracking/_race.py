"""A tracking worker for the race tests, importable by a spawned process (no torch, no conftest).

Each worker waits at a barrier shared by all workers, so that every one of them starts tracking
the study at the same instant, then runs a few trials with the tracker as callback.
"""

from __future__ import annotations

from typing import Any

import optuna

from optuna_devnas.tracking import MLflowTracker, log_step


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    log_step(trial, "curve", x, 0)  # the trial's run is created while the trial runs
    return x


def work(barrier: Any, storage: str, study_name: str, tracking_uri: str, n_trials: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=storage)
    tracker = MLflowTracker(tracking_uri=tracking_uri, experiment_name="race", retry_interval=0)
    barrier.wait()
    with tracker.track(study):
        study.optimize(objective, n_trials=n_trials, callbacks=[tracker])
