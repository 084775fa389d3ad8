"""Real MLflow stores for the tracking tests: SQLite files and a local ``mlflow server``.

A fresh MLflow SQLite store runs all of MLflow's schema migrations (seconds of CPU), so one
migrated store is built per MLflow version (kept in pytest's cache) and copied for each test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import csv
from dataclasses import dataclass
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any
import urllib.error
import urllib.request
import warnings

import optuna
import pytest

from optuna_devnas.spaces import Architecture, CellSpace
from optuna_devnas.tracking import log_step

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="session")
def migrated_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Path of an empty, fully migrated MLflow SQLite store (do not write to it: copy it)."""
    import mlflow
    from mlflow import MlflowClient

    cache_provider = getattr(request.config, "cache", None)
    if cache_provider is None:  # pytest -p no:cacheprovider
        cache = tmp_path_factory.mktemp("mlflow-store")
    else:
        cache = Path(cache_provider.mkdir(f"mlflow-store-{mlflow.__version__}"))
    template = cache / "mlflow.db"
    if not template.exists():
        building = tmp_path_factory.mktemp("template") / "mlflow.db"
        MlflowClient(f"sqlite:///{building}").search_experiments()
        shutil.copy(building, cache / "partial.db")
        os.replace(cache / "partial.db", template)  # atomic: never a half-written template
    return template


@pytest.fixture
def sqlite_uri(tmp_path: Path, migrated_store: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Tracking URI of a fresh SQLite store in the test's temporary folder, which is also the
    working directory (a SQLite store keeps artifacts in ``./mlruns``)."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(migrated_store, tmp_path / "tracking.db")
    return f"sqlite:///{tmp_path / 'tracking.db'}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on: a tracking server that is down."""
    return free_port()


class MlflowServer:
    """``mlflow server`` on a loopback port with a SQLite backend and an artifact folder."""

    def __init__(self, folder: Path, store: Path) -> None:
        self.folder = folder
        self.database = folder / "server.db"
        shutil.copy(store, self.database)
        self.artifacts = folder / "artifacts"
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> None:
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - kept open by the child
        self.process = subprocess.Popen(
            [
                str(VENV_BIN / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{self.database}",
                "--artifacts-destination",
                str(self.artifacts),
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            start_new_session=True,  # its own process group: stop() ends uvicorn too
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.folder / "server.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"mlflow server did not answer on {self.uri} in {timeout} s")

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
        # The port must refuse connections before the test goes on.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)


@pytest.fixture(scope="module")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, migrated_store: Path
) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"), migrated_store)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def cheap_objective(
    space: CellSpace, *, epochs: int = 3, fail_on: int | None = None, prune_on: int | None = None
) -> Callable[[optuna.Trial], tuple[float, float]]:
    """A quick two-objective function of a CellSpace architecture that does what a real search
    does to a trial: a training curve through log_step, DPPSampler-style system attributes, a
    constraint; trial ``fail_on`` raises ValueError and ``prune_on`` is pruned."""

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        arch = space.suggest(trial)
        n_layers = len(arch.layers)
        convolutions = sum("conv" in layer for layer in arch.layers)
        for epoch in range(epochs):
            log_step(trial, "val_error", 1.0 / (n_layers + epoch + 1), epoch)
        storage = trial.study._storage
        storage.set_trial_system_attr(trial._trial_id, "DPPSampler:stage", n_layers)
        storage.set_trial_system_attr(trial._trial_id, "DPPSampler:prediction", 0.5 / n_layers)
        storage.set_trial_system_attr(trial._trial_id, "DPPSampler:note", ["not", "a number"])
        trial.set_constraint("latency", n_layers - 2.5)
        if trial.number == fail_on:
            raise ValueError("this trial fails")
        if trial.number == prune_on:
            raise optuna.TrialPruned()
        return 1.0 / n_layers + 0.01 * convolutions, float(10 * n_layers + convolutions)

    return objective


def new_study(name: str, storage: str | None = None, seed: int = 0) -> optuna.Study:
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        directions=["minimize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_error", "size"])
    return study


@pytest.fixture
def make_objective() -> Callable[..., Callable[[optuna.Trial], tuple[float, float]]]:
    return cheap_objective


@pytest.fixture
def make_study() -> Callable[..., optuna.Study]:
    return new_study


@dataclass
class ReadBack:
    """An experiment read back through ``MlflowClient.search_runs``."""

    client: Any
    parents: dict[str, Any]  # study name -> parent run
    trials: dict[str, dict[int, Any]]  # study name -> trial number -> run


def read_back(uri: str, experiment_name: str) -> ReadBack:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment_name)
    assert experiment is not None, f"no experiment {experiment_name!r}"
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents: dict[str, Any] = {}
    trials: dict[str, dict[int, Any]] = {}
    for run in runs:
        tags = run.data.tags
        if tags.get("devnas.role") == "study":
            assert tags["optuna.study_name"] not in parents, "two parent runs for one study"
            parents[tags["optuna.study_name"]] = run
    for run in runs:
        tags = run.data.tags
        if tags.get("devnas.role") == "trial":
            study_name = tags["optuna.study_name"]
            assert tags["mlflow.parentRunId"] == parents[study_name].info.run_id
            number = int(tags["optuna.trial_number"])
            assert number not in trials.setdefault(study_name, {}), f"duplicate run of {number}"
            trials[study_name][number] = run
    return ReadBack(client, parents, trials)


def check_trial_runs(back: ReadBack, study: optuna.Study, *, epochs: int = 3) -> None:
    """Every trial of ``study`` (made with cheap_objective) is in MLflow, fully and once."""
    runs = back.trials[study.study_name]
    assert sorted(runs) == [t.number for t in study.trials]
    front = {t.number for t in study.best_trials}
    status = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
    for trial in study.trials:
        run = runs[trial.number]
        params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
        assert run.info.status == status[trial.state.name]
        assert tags["optuna.state"] == trial.state.name == tags["devnas.synced"]
        arch = Architecture.from_dict(trial.user_attrs["devnas:architecture"])
        assert params == {
            **{k: str(v) for k, v in trial.params.items()},
            "architecture": str(arch),
        }
        assert metrics["DPPSampler.stage"] == len(arch.layers)
        assert metrics["DPPSampler.prediction"] == pytest.approx(0.5 / len(arch.layers))
        assert json.loads(tags["DPPSampler.note"]) == ["not", "a number"]
        assert metrics["constraint.latency"] == trial.constraints["latency"]
        assert tags["optuna.feasible"] == str(trial.constraints["latency"] <= 0).lower()
        assert metrics["duration_s"] == pytest.approx(trial.duration.total_seconds())
        history = back.client.get_metric_history(run.info.run_id, "val_error")
        curve = [(m.step, m.value) for m in sorted(history, key=lambda m: m.timestamp)]
        expected = [(e, 1.0 / (len(arch.layers) + e + 1)) for e in range(epochs)]
        if trial.state.name == "COMPLETE":
            assert metrics["val_error"] == trial.values[0]
            assert metrics["size"] == trial.values[1]
            expected.append((epochs - 1, trial.values[0]))  # the objective ends the curve
            assert tags["pareto"] == str(trial.number in front).lower()
        else:
            assert "size" not in metrics
        assert [step for step, _ in curve] == [step for step, _ in expected]  # each once
        assert [value for _, value in curve] == pytest.approx([value for _, value in expected])
        local = Path(back.client.download_artifacts(run.info.run_id, "architecture.json"))
        assert json.loads(local.read_text()) == arch.to_dict()
    parent = back.parents[study.study_name]
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["n_complete"] == len(
        [t for t in study.trials if t.state.name == "COMPLETE"]
    )
    assert parent.data.metrics["pareto_front_size"] == len(front)
    csv_path = back.client.download_artifacts(parent.info.run_id, "pareto_front.csv")
    with open(csv_path) as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(int(row["trial"]) for row in rows) == sorted(front)
    for row in rows:
        assert row["run_id"] == runs[int(row["trial"])].info.run_id
    png = back.client.download_artifacts(parent.info.run_id, "pareto_front.png")
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def check_mirror() -> Callable[..., None]:
    """``check_mirror(uri, experiment, study)``: read back and check every run of ``study``."""

    def check(uri: str, experiment_name: str, study: optuna.Study, *, epochs: int = 3) -> None:
        check_trial_runs(read_back(uri, experiment_name), study, epochs=epochs)

    return check


@pytest.fixture
def read_mlflow() -> Callable[[str, str], ReadBack]:
    return read_back
