"""Workers that start tracking one study at the same instant share one parent run and one run
per trial (first-writer-wins claims in the Optuna storage), on SQLite and PostgreSQL studies,
with a local store and through a tracking server."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any
import uuid

from mlflow import MlflowClient
import optuna
import pytest

from tests.tracking import _race

POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
N_WORKERS = 4
N_TRIALS = 3  # per worker


def _postgres() -> str:
    try:
        optuna.storages.RDBStorage(POSTGRES).engine.dispose()
    except Exception as error:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL is not reachable: {error}")
    return POSTGRES


def _race_workers(storage: str, study_name: str, tracking_uri: str) -> optuna.Study:
    optuna.create_study(study_name=study_name, storage=storage)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(N_WORKERS)
    args = (barrier, storage, study_name, tracking_uri, N_TRIALS)
    workers = [context.Process(target=_race.work, args=args) for _ in range(N_WORKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0] * N_WORKERS
    return optuna.load_study(study_name=study_name, storage=storage)


def _check_one_run_each(tracking_uri: str, study: optuna.Study) -> None:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("race")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [run for run in runs if run.data.tags.get("devnas.role") == "study"]
    assert len(parents) == 1
    (parent,) = parents
    numbers = sorted(
        int(run.data.tags["optuna.trial_number"])
        for run in runs
        if run.data.tags.get("devnas.role") == "trial"
    )
    assert len(study.trials) == N_WORKERS * N_TRIALS
    assert numbers == [trial.number for trial in study.trials]  # each exactly once
    assert len(runs) == 1 + len(study.trials)
    assert all(
        run.data.tags["mlflow.parentRunId"] == parent.info.run_id for run in runs if run != parent
    )
    assert parent.info.status == "FINISHED"  # the last worker to end finished it
    assert parent.data.metrics["n_complete"] == len(study.trials)


@pytest.mark.slow
def test_four_workers_starting_at_once_on_sqlite_share_runs(
    tmp_path: Path, sqlite_uri: str
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = _race_workers(storage, "race", sqlite_uri)
    _check_one_run_each(sqlite_uri, study)


@pytest.mark.slow
def test_four_workers_starting_at_once_on_postgresql_share_runs(sqlite_uri: str) -> None:
    storage = _postgres()
    name = f"devnas-race-{uuid.uuid4().hex[:8]}"
    try:
        study = _race_workers(storage, name, sqlite_uri)
        _check_one_run_each(sqlite_uri, study)
    finally:
        optuna.delete_study(study_name=name, storage=storage)


@pytest.mark.slow
def test_four_workers_starting_at_once_share_runs_on_a_tracking_server(
    tmp_path: Path, mlflow_server: Any
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = _race_workers(storage, "race", mlflow_server.uri)
    _check_one_run_each(mlflow_server.uri, study)
