"""Against a real ``mlflow server`` (SQLite backend, proxied artifact folder) on loopback.

The module shares one server; the last test stops it in the middle of a study and starts it
again on the same database and port.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest

from optuna_devnas.cli import main
from optuna_devnas.spaces import CellSpace
from optuna_devnas.tracking import MLflowTracker, TrackingWarning

SPACE = CellSpace(max_layers=3)


def test_tracker_writes_runs_and_artifacts_to_a_tracking_server(
    mlflow_server: Any,
    make_objective: Callable[..., Callable],
    make_study: Callable[..., optuna.Study],
    check_mirror: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    study = make_study("remote")
    tracker = MLflowTracker(tracking_uri=mlflow_server.uri, experiment_name="server")
    with tracker.track(study):
        study.optimize(
            make_objective(SPACE, prune_on=1), n_trials=5, n_jobs=2, callbacks=[tracker]
        )
    assert "View run" not in capsys.readouterr().out  # MLflow's two lines per run, suppressed
    check_mirror(mlflow_server.uri, "server", study)
    # Artifacts went through the server into its artifact folder.
    stored = {path.name for path in Path(mlflow_server.artifacts).rglob("*") if path.is_file()}
    assert {"architecture.json", "pareto_front.csv", "pareto_front.png"} <= stored


@pytest.mark.slow
def test_server_stopped_mid_study_then_mlflow_sync_catches_up_without_duplicates(
    tmp_path: Path,
    mlflow_server: Any,
    make_objective: Callable[..., Callable],
    make_study: Callable[..., optuna.Study],
    check_mirror: Callable[..., None],
    read_mlflow: Callable,
    capsys: pytest.CaptureFixture[str],
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = make_study("outage", storage=storage)
    tracker = MLflowTracker(tracking_uri=mlflow_server.uri, max_retries=0, retry_interval=3600)
    cheap = make_objective(SPACE, fail_on=5)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        values = cheap(trial)  # logs its curve first: trial 2's run exists, half written
        if trial.number == 2:
            mlflow_server.stop()
        return values

    with pytest.warns(TrackingWarning) as caught:
        with tracker.track(study):
            study.optimize(objective, n_trials=7, callbacks=[tracker], catch=(ValueError,))
    assert len(study.trials) == 7  # the study never noticed
    messages = [str(w.message) for w in caught]
    assert sum("Could not write to MLflow" in m for m in messages) == 1
    assert sum("devnas mlflow-sync" in m for m in messages) == 1

    mlflow_server.start()
    partial = read_mlflow(mlflow_server.uri, "outage")
    assert sorted(partial.trials["outage"]) == [0, 1, 2]
    assert partial.trials["outage"][2].info.status == "RUNNING"

    args = ["mlflow-sync", "--storage", storage, "--study", "outage"]
    args += ["--tracking-uri", mlflow_server.uri]
    assert main(args) == 0
    assert "4 trial runs created, 1 updated, 2 unchanged" in capsys.readouterr().out
    check_mirror(mlflow_server.uri, "outage", study)  # all 7, each once, curves not doubled
    assert main(args) == 0
    assert "0 trial runs created, 0 updated, 7 unchanged" in capsys.readouterr().out
    check_mirror(mlflow_server.uri, "outage", study)
