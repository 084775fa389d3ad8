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

from optuna_devnas.samplers import DPPSampler
from tests.samplers._objectives import SPACE, cost, objective

STUDY = "dpp-dashboard"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'study.db'}"
    sampler = DPPSampler(space=SPACE, k=2, cheap_objectives={1: cost}, seed=0)
    study = optuna.create_study(
        study_name=STUDY, storage=url, directions=["minimize", "minimize"], sampler=sampler
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_error", "params"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=8)
    return url


@pytest.fixture(scope="module")
def dashboard(storage: str) -> Iterator[str]:
    """``optuna-dashboard STORAGE --host 127.0.0.1 --port PORT``, as docs/dashboard.md says."""
    port = _free_port()
    command = [str(Path(sys.executable).parent / "optuna-dashboard"), storage]
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
    assert [s["study_name"] for s in summaries] == [STUDY]
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
