from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import socket
import time

from mlflow import MlflowClient
import optuna
import pytest

from optuna_devnas.cli import main
from optuna_devnas.spaces import CellSpace
from optuna_devnas.tracking import MLflowTracker, sync_study

SPACE = CellSpace(max_layers=3)


def test_mlflow_sync_replays_a_study_and_twice_creates_nothing_new(
    tmp_path: Path,
    sqlite_uri: str,
    capsys: pytest.CaptureFixture[str],
    read_mlflow: Callable,
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    sampler = optuna.samplers.RandomSampler(seed=1)
    study = optuna.create_study(study_name="untracked", storage=storage, sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        arch = SPACE.suggest(trial)
        for step in range(2):
            trial.report(1.0 / (len(arch.layers) + step), step)
        return 1.0 / len(arch.layers)

    study.optimize(objective, n_trials=5)
    args = ["mlflow-sync", "--storage", storage, "--study", "untracked"]
    args += ["--tracking-uri", sqlite_uri, "--experiment", "replayed"]

    assert main(args) == 0
    assert "5 trial runs created, 0 updated, 0 unchanged" in capsys.readouterr().out
    first = read_mlflow(sqlite_uri, "replayed")
    assert main(args) == 0
    assert "0 trial runs created, 0 updated, 5 unchanged" in capsys.readouterr().out
    second = read_mlflow(sqlite_uri, "replayed")  # asserts no duplicate runs

    runs = second.trials["untracked"]
    assert {n: r.info.run_id for n, r in runs.items()} == {
        n: r.info.run_id for n, r in first.trials["untracked"].items()
    }
    best = {t.number for t in study.best_trials}  # ties included
    for trial in study.trials:
        run = runs[trial.number]
        assert run.data.metrics["value"] == trial.value
        assert run.data.tags["pareto"] == str(trial.number in best).lower()
        history = second.client.get_metric_history(run.info.run_id, "intermediate_value")
        assert sorted((m.step, m.value) for m in history) == sorted(
            trial.intermediate_values.items()
        )
    assert second.parents["untracked"].info.status == "FINISHED"


def test_sync_writes_a_running_trial_and_completes_it_later(
    sqlite_uri: str, read_mlflow: Callable
) -> None:
    study = optuna.create_study(study_name="running")
    trial = study.ask()
    SPACE.suggest(trial)
    result = sync_study(study._storage, "running", tracking_uri=sqlite_uri)
    assert (result.created, result.updated, result.unchanged) == (1, 0, 0)
    back = read_mlflow(sqlite_uri, "running")
    assert back.trials["running"][0].info.status == "RUNNING"
    assert back.parents["running"].info.status == "RUNNING"  # the study is still going

    study.tell(trial, 0.25)
    result = sync_study(study._storage, "running", tracking_uri=sqlite_uri)
    assert (result.created, result.updated, result.unchanged) == (0, 1, 0)
    back = read_mlflow(sqlite_uri, "running")
    run = back.trials["running"][0]
    assert run.info.status == "FINISHED" and run.data.metrics["value"] == 0.25
    assert back.parents["running"].info.status == "FINISHED"


def test_sync_after_the_tracker_finds_every_run_already_written(
    sqlite_uri: str,
    make_objective: Callable[..., Callable],
    make_study: Callable[..., optuna.Study],
) -> None:
    study = make_study("tracked")
    tracker = MLflowTracker(tracking_uri=sqlite_uri, experiment_name="both")
    with tracker.track(study):
        study.optimize(make_objective(SPACE), n_trials=3, callbacks=[tracker])
    result = sync_study(study._storage, "tracked", tracking_uri=sqlite_uri, experiment_name="both")
    assert (result.created, result.updated, result.unchanged) == (0, 0, 3)
    assert result.parent_run_id == tracker.parent_run_id(study)
    client = MlflowClient(sqlite_uri)
    assert len(client.search_runs([result.experiment_id])) == 4


def test_mlflow_sync_reports_user_errors_in_one_line(
    tmp_path: Path, sqlite_uri: str, unused_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(study_name="exists", storage=storage)
    assert main(["mlflow-sync", "--storage", storage, "--study", "missing"]) == 2
    assert "study_name='missing', but the storage has only ['exists']" in capsys.readouterr().err
    dead = f"http://127.0.0.1:{unused_port}"
    started = time.monotonic()
    code = main(["mlflow-sync", "--storage", storage, "--study", "exists", "--tracking-uri", dead])
    assert time.monotonic() - started < 15  # not MLflow's minutes of retries
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"devnas mlflow-sync: error: could not write to MLflow at {dead}")
    # Names for another number of objectives are refused, not ignored.
    assert main(
        ["mlflow-sync", "--storage", storage, "--study", "exists", "--metric-names", "a,b"]
    )
    assert "Got metric_names=['a', 'b'], but study 'exists' has 1 objective(s)" in (
        capsys.readouterr().err
    )


def test_a_new_study_reusing_a_name_gets_its_own_parent_run(sqlite_uri: str) -> None:
    parents = []
    for value in (1.0, 2.0):  # e.g. a script run twice with in-memory storage
        study = optuna.create_study(study_name="same-name")
        study.optimize(lambda t, v=value: v + 0 * t.suggest_float("x", 0, 1), n_trials=2)
        result = sync_study(study._storage, "same-name", tracking_uri=sqlite_uri)
        assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
        again = sync_study(study._storage, "same-name", tracking_uri=sqlite_uri)
        assert again.parent_run_id == result.parent_run_id
        parents.append(result.parent_run_id)
    assert parents[0] != parents[1]
    client = MlflowClient(sqlite_uri)
    for parent, value in zip(parents, (1.0, 2.0), strict=True):
        children = client.search_runs(
            [result.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'"
        )
        assert [run.data.metrics["value"] for run in children] == [value, value]


def test_mlflow_sync_deletes_duplicates_that_older_versions_left(
    tmp_path: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str], read_mlflow: Callable
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="split", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    # What racing workers of older versions wrote: the stored id, and another a worker kept.
    study._storage.set_study_system_attr(study._study_id, "devnas:mlflow_study_uid", "stored")
    client = MlflowClient(sqlite_uri)
    experiment = client.create_experiment("split")

    def parent(uid: str) -> str:
        tags = {"devnas.role": "study", "optuna.study_name": "split", "devnas.study_uid": uid}
        return client.create_run(experiment, tags=tags, start_time=1).info.run_id

    def child(parent_id: str, number: int, start: int | None = None) -> str:
        trial = study.trials[number]
        tags = {
            "devnas.role": "trial",
            "optuna.study_name": "split",
            "optuna.trial_number": str(number),
            "mlflow.parentRunId": parent_id,
        }
        start = int(trial.datetime_start.timestamp() * 1000) if start is None else start
        return client.create_run(experiment, tags=tags, start_time=start).info.run_id

    first, second, other_id = parent("stored"), parent("stored"), parent("lost")
    child(first, 0), child(second, 0), child(second, 1), child(other_id, 1), child(other_id, 2)
    unrelated = parent("an older study of the same name")
    kept_child = child(unrelated, 0, start=5)  # did not start with any trial of this study

    args = ["mlflow-sync", "--storage", storage, "--study", "split"]
    args += ["--tracking-uri", sqlite_uri, "--experiment", "split"]
    assert main(args) == 0
    out = capsys.readouterr().out
    # 2 parents and one copy each of trials 0 and 1 go; trial 2's run is moved and kept.
    assert "0 trial runs created, 3 updated, 0 unchanged; 4 duplicate runs deleted." in out
    runs = client.search_runs([experiment], max_results=100)
    parents = {run.info.run_id for run in runs if run.data.tags["devnas.role"] == "study"}
    (kept,) = parents - {unrelated}
    assert unrelated in parents and kept in (first, second)  # the earliest (ties: by id)
    children = {
        int(run.data.tags["optuna.trial_number"]): run
        for run in runs
        if run.data.tags.get("mlflow.parentRunId") == kept
    }
    assert sorted(children) == [0, 1, 2]
    for number, run in children.items():
        assert run.data.metrics["value"] == study.trials[number].value
    assert client.get_run(kept_child).info.lifecycle_stage == "active"
    assert main(args) == 0
    assert "0 updated, 3 unchanged; 0 duplicate runs deleted." in capsys.readouterr().out


def test_mlflow_sync_gives_up_on_a_server_that_never_answers_within_15_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(study_name="exists", storage=storage)
    with socket.socket() as hung:  # connections are queued by the kernel, never answered
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        uri = f"http://127.0.0.1:{hung.getsockname()[1]}"
        started = time.monotonic()
        code = main(
            ["mlflow-sync", "--storage", storage, "--study", "exists", "--tracking-uri", uri]
        )
        elapsed = time.monotonic() - started
    assert code == 2 and elapsed < 15, elapsed
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"devnas mlflow-sync: error: could not write to MLflow at {uri}")


@pytest.mark.parametrize(
    "storage",
    [
        "sqlite:///{tmp}/mistyped.db",
        "sqlite:///{tmp}/no/such/folder/search.db",
        "sqlite3:/not-a-url",
        "postgresql+psycopg2://postgres@127.0.0.1:1/test",
    ],
)
def test_mlflow_sync_names_a_bad_storage_in_one_line_and_creates_nothing(
    storage: str, tmp_path: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = storage.format(tmp=tmp_path)
    before = sorted(tmp_path.rglob("*"))
    started = time.monotonic()
    code = main(["mlflow-sync", "--storage", url, "--study", "s", "--tracking-uri", sqlite_uri])
    assert time.monotonic() - started < 15
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert url in line and "MLflow" not in line
    assert sorted(tmp_path.rglob("*")) == before  # no empty database made


def test_mlflow_sync_takes_hypervolume_bounds_and_refuses_wrong_ones(
    tmp_path: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str], read_mlflow: Callable
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="hv", storage=storage, directions=["minimize"] * 2)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1 - t.params["x"]), n_trials=3)
    args = ["mlflow-sync", "--storage", storage, "--study", "hv", "--tracking-uri", sqlite_uri]
    assert main([*args, "--hypervolume-bounds", "1,0;0,1"]) == 2  # best is 0 when minimizing
    assert "(1.0, 0.0) is not (best, worst) for an objective to minimize" in (
        capsys.readouterr().err
    )
    assert main([*args, "--hypervolume-bounds", "0,2;0,2"]) == 0
    parent = read_mlflow(sqlite_uri, "hv").parents["hv"]
    assert parent.data.params["hypervolume.bounds"] == "values_0 0 to 2; values_1 0 to 2"
    # x + (1 - x) = 1: every trial lies on one line, scaled by 1/2.
    xs = sorted(t.params["x"] for t in study.trials)
    scaled = [(x / 2, (1 - x) / 2) for x in xs]
    expected = sum(
        (right[0] - left[0]) * (1 - left[1])
        for left, right in zip(scaled, [*scaled[1:], (1.0, 0.0)], strict=True)
    )
    assert parent.data.metrics["hypervolume"] == pytest.approx(expected)
