"""Optuna Dashboard on a DPPSampler study: the documented command serves its trials and front."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
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

from optuna_devnas.cli import main
from optuna_devnas.samplers import DPPSampler
from tests.samplers._objectives import SPACE, cost, objective

STUDY = "dpp-dashboard"
SEARCH = "devnas-search"
# The smallest real `devnas search`: one-layer cells, one epoch on digits, three trials.
SEARCH_ARGS = ["--objectives", "val_error,params", "--epochs", "1", "--trials", "3"]
SEARCH_ARGS += ["--max-layers", "1", "--depths", "1,1", "--growth-rates", "8,16"]
SEARCH_ARGS += ["--stem-channels", "8", "--quiet"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dashboard")


@pytest.fixture(scope="module")
def storage(folder: Path) -> str:
    """One SQLite file: a DPPSampler study of a script, and one run by ``devnas search``."""
    url = f"sqlite:///{folder / 'study.db'}"
    sampler = DPPSampler(space=SPACE, k=2, cheap_objectives={1: cost}, seed=0)
    study = optuna.create_study(
        study_name=STUDY, storage=url, directions=["minimize", "minimize"], sampler=sampler
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_error", "params"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=8)
    artifacts = ["--artifacts", str(folder / "artifacts")]
    assert main(["search", "--study", SEARCH, "--storage", url, *artifacts, *SEARCH_ARGS]) == 0
    return url


@pytest.fixture(scope="module")
def dashboard(storage: str, folder: Path) -> Iterator[str]:
    """``optuna-dashboard STORAGE --artifact-dir ...`` on loopback, as docs/dashboard.md says."""
    port = _free_port()
    command = [str(Path(sys.executable).parent / "optuna-dashboard"), storage]
    command += ["--artifact-dir", str(folder / "artifacts")]
    command += ["--host", "127.0.0.1", "--port", str(port), "--quiet"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(f"{base}/api/meta")
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    stderr = server.communicate()[1].decode()
                    raise RuntimeError(f"optuna-dashboard did not start: {stderr}") from None
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
def test_dashboard_serves_the_studys_trials_and_pareto_front(storage: str, dashboard: str) -> None:
    study = optuna.load_study(study_name=STUDY, storage=storage)
    summaries = _get(f"{dashboard}/api/studies")["study_summaries"]
    assert [s["study_name"] for s in summaries] == [STUDY, SEARCH]
    detail = _get(f"{dashboard}/api/studies/{summaries[0]['study_id']}")

    assert detail["directions"] == ["minimize", "minimize"]
    assert detail["objective_names"] == ["val_error", "params"]
    trials = detail["trials"]
    assert [t["number"] for t in trials] == [t.number for t in study.trials]
    assert all(t["state"] == "Complete" for t in trials)
    for served, trial in zip(trials, study.trials):
        assert {p["name"]: p["param_external_value"] for p in served["params"]} == {
            name: str(value) for name, value in trial.params.items()
        }
        assert served["values"] == pytest.approx(trial.values)
    front = sorted(t["number"] for t in detail["best_trials"])
    assert front == sorted(t.number for t in study.best_trials)
    assert 1 <= len(front) < len(trials)
    with urllib.request.urlopen(f"{dashboard}/dashboard", timeout=10) as page:
        assert page.status == 200 and b"<html" in page.read().lower()


@pytest.mark.slow
def test_dashboard_serves_a_devnas_search_with_its_weights(storage: str, dashboard: str) -> None:
    study = optuna.load_study(study_name=SEARCH, storage=storage)
    summaries = _get(f"{dashboard}/api/studies")["study_summaries"]
    study_id = next(s["study_id"] for s in summaries if s["study_name"] == SEARCH)
    detail = _get(f"{dashboard}/api/studies/{study_id}")

    assert detail["objective_names"] == ["val_error", "params"]  # named by devnas search
    assert "devnas:config" in {a["key"] for a in detail["user_attrs"]}
    assert len(detail["trials"]) == 3
    for served in detail["trials"]:
        assert {p["name"] for p in served["params"]} == {"cell.n_layers", "cell.layer_0"}
        assert "devnas:architecture" in {a["key"] for a in served["user_attrs"]}
        # The trained weights, saved to the artifact store, are listed for download.
        names = [a["filename"] for a in served["artifacts"]]
        assert len(names) == 1 and names[0].endswith("weights.pt"), names
    front = sorted(t["number"] for t in detail["best_trials"])
    assert front == sorted(t.number for t in study.best_trials)
