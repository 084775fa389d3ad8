from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import shutil
import warnings

from mlflow import MlflowClient
import numpy as np
import optuna
import pytest
import torch

from optuna_devnas.data import TensorData, load_digits
from optuna_devnas.objectives import ValidationError
from optuna_devnas.spaces import CellSpace
from optuna_devnas.tracking import MLflowTracker, TrackingWarning, sync_study

SPACE = CellSpace(max_layers=3)


def test_default_store_holds_a_parent_run_and_a_nested_run_per_trial(
    tmp_path: Path,
    migrated_store: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_objective: Callable[..., Callable],
    make_study: Callable[..., optuna.Study],
    check_mirror: Callable[..., None],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copy(migrated_store, tmp_path / "mlflow.db")  # MLflow's default store, migrated
    study = make_study("default-store")
    tracker = MLflowTracker(experiment_name="devnas-test")
    assert tracker.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"

    with warnings.catch_warnings():
        warnings.simplefilter("error", TrackingWarning)
        with tracker.track(study):
            study.optimize(
                make_objective(SPACE, fail_on=2, prune_on=4),
                n_trials=8,
                n_jobs=2,
                callbacks=[tracker],
                catch=(ValueError,),
            )

    assert [t.state.name for t in study.trials].count("FAIL") == 1
    check_mirror(tracker.tracking_uri, "devnas-test", study)
    parent = MlflowClient(tracker.tracking_uri).get_run(tracker.parent_run_id(study))
    assert parent.data.tags["optuna.sampler"] == "RandomSampler"
    assert parent.data.tags["optuna.metric_names"] == "val_error,size"


def test_metric_names_default_to_optunas_and_can_be_given(
    sqlite_uri: str, read_mlflow: Callable
) -> None:
    study = optuna.create_study(directions=["minimize", "maximize"], study_name="names")
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 2.0), n_trials=2)
    # Used without track(): finish() writes the trials, the front, and ends the parent run.
    assert MLflowTracker(tracking_uri=sqlite_uri, experiment_name="a").finish(study)
    given = MLflowTracker(tracking_uri=sqlite_uri, experiment_name="b", metric_names=["e", "a:%"])
    assert given.finish(study)
    assert read_mlflow(sqlite_uri, "a").trials["names"][0].data.metrics["values_1"] == 2.0
    assert read_mlflow(sqlite_uri, "b").trials["names"][0].data.metrics["a._"] == 2.0
    with pytest.raises(ValueError, match="metric_names='err'"):
        MLflowTracker(tracking_uri=sqlite_uri, metric_names="err")
    with pytest.raises(ValueError, match="2 objective"):
        MLflowTracker(tracking_uri=sqlite_uri, metric_names=["only one"]).finish(study)


def test_a_dead_server_never_fails_the_study_and_sync_fills_in_later(
    unused_port: int,
    sqlite_uri: str,
    make_objective: Callable[..., Callable],
    make_study: Callable[..., optuna.Study],
    check_mirror: Callable[..., None],
) -> None:
    study = make_study("offline")
    tracker = MLflowTracker(
        tracking_uri=f"http://127.0.0.1:{unused_port}", max_retries=0, retry_interval=0.0
    )
    with pytest.warns(TrackingWarning) as caught:
        with tracker.track(study):
            study.optimize(make_objective(SPACE), n_trials=4, callbacks=[tracker])
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)
    messages = [str(w.message) for w in caught]
    assert sum("Could not write to MLflow" in m for m in messages) == 1  # warns once
    assert sum("devnas mlflow-sync" in m for m in messages) == 1
    # The curves were recorded in the Optuna storage, so nothing is lost.
    result = sync_study(study._storage, "offline", tracking_uri=sqlite_uri)
    assert (result.created, result.updated, result.unchanged) == (4, 0, 0)
    check_mirror(sqlite_uri, "offline", study)


def test_validation_error_training_curve_is_logged_per_epoch(
    sqlite_uri: str, read_mlflow: Callable
) -> None:
    digits = load_digits(seed=0)
    small = TensorData(
        "digits-small", digits.train_x[:128], digits.train_y[:128], digits.val_x[:64],
        digits.val_y[:64], digits.num_classes,
    )  # fmt: skip
    train = ValidationError(data=small, epochs=2)
    space = CellSpace(max_layers=1)
    study = optuna.create_study(study_name="training")
    tracker = MLflowTracker(tracking_uri=sqlite_uri)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny network: more threads only contend on a busy machine
    try:
        with tracker.track(study):
            study.optimize(
                lambda t: train(space.suggest(t), trial=t), n_trials=1, callbacks=[tracker]
            )
    finally:
        torch.set_num_threads(threads)
    run = read_mlflow(sqlite_uri, "training").trials["training"][0]
    client = MlflowClient(sqlite_uri)
    history = client.get_metric_history(run.info.run_id, "val_error")
    assert [m.step for m in history][:2] == [0, 1]
    assert [m.value for m in history][:2] == pytest.approx(train.history)
    assert run.data.metrics["value"] == pytest.approx(train.history[-1])
    intermediate = client.get_metric_history(run.info.run_id, "intermediate_value")
    assert [m.value for m in intermediate] == pytest.approx(train.history)


def test_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="retry_interval=-1"):
        MLflowTracker(tracking_uri="sqlite:///x.db", retry_interval=-1)
    with pytest.raises(ValueError, match="request_timeout=0"):
        MLflowTracker(tracking_uri="sqlite:///x.db", request_timeout=0)
    with pytest.raises(ValueError, match="max_retries=-2"):
        MLflowTracker(tracking_uri="sqlite:///x.db", max_retries=-2)
    with pytest.raises(ValueError, match="experiment_name=''"):
        MLflowTracker(tracking_uri="sqlite:///x.db", experiment_name="")
    with pytest.raises(ValueError, match=r"hypervolume_bounds=\[\(0, 0\)\].*distinct"):
        MLflowTracker(tracking_uri="sqlite:///x.db", hypervolume_bounds=[(0, 0)])
    with pytest.raises(ValueError, match="hypervolume_bounds=.*pair of numbers"):
        MLflowTracker(tracking_uri="sqlite:///x.db", hypervolume_bounds=[1.0, 2.0])


def test_the_parent_run_stays_running_while_another_worker_has_trials(
    tmp_path: Path, sqlite_uri: str
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="shared", storage=storage)
    other = optuna.load_study(study_name="shared", storage=storage)  # a second worker
    first, second = MLflowTracker(tracking_uri=sqlite_uri), MLflowTracker(tracking_uri=sqlite_uri)
    client = MlflowClient(sqlite_uri)

    def status() -> str:
        parent_id = first.parent_run_id(study)
        assert parent_id is not None and parent_id == second.parent_run_id(other)
        return str(client.get_run(parent_id).info.status)

    with second.track(other):
        held = other.ask()  # the second worker's trial runs across the first's whole block
        held.suggest_float("x", 0, 1)
        with first.track(study):
            study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, callbacks=[first])
        assert status() == "RUNNING"  # the first worker is done, the study is not
        frozen = other.tell(held, 0.5)
        second(other, frozen)
    assert status() == "FINISHED"  # the last worker to end ends it

    seen = []
    joining = MLflowTracker(tracking_uri=sqlite_uri)
    with joining.track(study):  # a worker joining later: the study runs again
        study.optimize(lambda t: seen.append(status()) or 0.0, n_trials=1, callbacks=[joining])
    assert seen == ["RUNNING"] and status() == "FINISHED"
    with pytest.raises(RuntimeError), joining.track(study):
        raise RuntimeError("the worker's own code failed")
    assert status() == "KILLED"


def test_the_parent_run_compares_searches_by_settings_and_hypervolume(
    sqlite_uri: str, read_mlflow: Callable
) -> None:
    from optuna._hypervolume import compute_hypervolume

    bounds = [(0.0, 1.0), (0.0, 2.0)]
    sampler = optuna.samplers.TPESampler(n_startup_trials=2, seed=0)
    study = optuna.create_study(
        study_name="tpe", directions=["minimize", "minimize"], sampler=sampler
    )
    tracker = MLflowTracker(
        tracking_uri=sqlite_uri, experiment_name="cmp", hypervolume_bounds=bounds
    )

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        return x, (1.0 - x) ** 2 + 0.1

    with tracker.track(study):
        study.optimize(objective, n_trials=6, callbacks=[tracker])
    experiment = MlflowClient(sqlite_uri).get_experiment_by_name("cmp")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # runs table
    parent = read_mlflow(sqlite_uri, "cmp").parents["tpe"]
    params, metrics = parent.data.params, parent.data.metrics
    assert params["sampler"] == "TPESampler" and params["sampler.n_startup_trials"] == "2"
    assert params["objective.values_0"] == params["objective.values_1"] == "minimize"
    assert params["space.x"].startswith("FloatDistribution(")
    values = np.array([t.values for t in study.trials]) / [1.0, 2.0]  # scaled by the bounds
    assert metrics["hypervolume"] == pytest.approx(compute_hypervolume(values, np.ones(2)))
    history = MlflowClient(sqlite_uri).get_metric_history(parent.info.run_id, "hypervolume")
    curve = dict(sorted((m.step, m.value) for m in history))
    assert sorted(curve) == [1, 2, 3, 4, 5, 6]  # one point per finished trial, each once
    assert len(history) == 6
    assert all(a <= b for a, b in zip(list(curve.values()), list(curve.values())[1:]))
    assert metrics["best.values_0"] == min(t.values[0] for t in study.trials)
    assert metrics["n_complete"] == 6 and metrics["n_running"] == 0
    # A sync into another experiment finds the bounds stored with the study.
    result = sync_study(study._storage, "tpe", tracking_uri=sqlite_uri, experiment_name="again")
    again = MlflowClient(sqlite_uri).get_run(result.parent_run_id).data.metrics
    assert again["hypervolume"] == metrics["hypervolume"]


def test_the_objective_logs_into_its_trials_run_and_failures_are_recorded(
    sqlite_uri: str, read_mlflow: Callable
) -> None:
    import mlflow

    study = optuna.create_study(study_name="own")
    tracker = MLflowTracker(tracking_uri=sqlite_uri, experiment_name="own")

    @tracker.track_in_mlflow()
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        mlflow.log_metric("x_squared", x**2)
        mlflow.log_param("note", f"trial {trial.number}")
        trial.set_user_attr("instanas:children", 2)
        if trial.number == 1:
            raise ValueError("no   memory\nleft")
        return x

    with tracker.track(study):
        study.optimize(objective, n_trials=3, callbacks=[tracker], catch=(ValueError,))
    assert mlflow.active_run() is None
    runs = read_mlflow(sqlite_uri, "own").trials["own"]
    for trial in study.trials:
        run = runs[trial.number]
        assert run.info.run_name == f"own #{trial.number}"  # says which study
        assert run.data.metrics["x_squared"] == pytest.approx(trial.params["x"] ** 2)
        assert run.data.params["note"] == f"trial {trial.number}"
        assert run.data.tags["instanas.children"] == "2"
        assert run.data.tags["mlflow.source.name"]  # provenance, as mlflow.start_run sets
        assert "mlflow.user" in run.data.tags
    assert runs[1].info.status == "FAILED"
    assert runs[1].data.tags["optuna.fail_reason"] == "ValueError: no memory left"
    assert runs[0].info.status == runs[2].info.status == "FINISHED"


def test_track_in_mlflow_runs_the_objective_when_mlflow_is_down(unused_port: int) -> None:
    import mlflow

    tracker = MLflowTracker(
        tracking_uri=f"http://127.0.0.1:{unused_port}", max_retries=0, retry_interval=3600
    )
    active = []

    @tracker.track_in_mlflow()
    def objective(trial: optuna.Trial) -> float:
        active.append(mlflow.active_run())
        return trial.suggest_float("x", 0, 1)

    study = optuna.create_study()
    with pytest.warns(TrackingWarning, match="Could not write to MLflow"):
        study.optimize(objective, n_trials=2)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert active == [None, None]
