"""Bad input to the ``devnas`` command: one clear line, a non-zero exit, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import optuna
import pytest


def devnas(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optuna_devnas.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_malformed_storage_url(tmp_path: Path) -> None:
    result = devnas("pareto", "--storage", "not-a-url", "--study", "x", cwd=tmp_path)
    assert_one_line_error(result, "not-a-url", "not a database URL")


def test_unreachable_storage(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/test"
    result = devnas("worker", "--storage", url, "--study", "x", cwd=tmp_path)
    assert_one_line_error(result, "Cannot open storage", "127.0.0.1")


def test_worker_for_a_study_that_does_not_exist(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    optuna.create_study(study_name="other", storage=url)
    result = devnas("worker", "--storage", url, "--study", "missing", cwd=tmp_path)
    assert_one_line_error(result, "No study named 'missing'", "other")


def test_missing_data_folder(tmp_path: Path) -> None:
    result = devnas(
        "search",
        "--storage",
        f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "--data",
        "cifar10",
        "--data-root",
        str(tmp_path / "no-cifar"),
        cwd=tmp_path,
    )
    assert_one_line_error(result, "no-cifar")


@pytest.mark.parametrize(
    "content, needle",
    [
        ({"trials": 3, "epoch": 2}, "unknown key(s) ['epoch']"),
        ({"trials": "three"}, "Got trials='three', but expected int"),
        ({"objectives": ["val_error", "speed"]}, "Got objective 'speed'"),
        ({"depths": [2, "x"]}, "expected a list of int"),
    ],
)
def test_bad_configuration_files(tmp_path: Path, content: dict[str, object], needle: str) -> None:
    path = tmp_path / "search.json"
    path.write_text(json.dumps(content))
    result = devnas("search", "--config", str(path), cwd=tmp_path)
    assert_one_line_error(result, needle)


def test_configuration_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "search.toml"
    path.write_text("trials = = 3\n")
    assert_one_line_error(devnas("search", "--config", str(path), cwd=tmp_path), "search.toml")


OBJECTIVE = """
import math

def objective(trial, space, data):
    arch = space.suggest(trial)
    bad = {0: (math.nan, 1.0), 1: (math.inf, 1.0), 2: (1.0, 2.0, 3.0)}
    return bad.get(trial.number, (float(arch.n_layers), 1.0 / arch.n_layers))
"""


def test_bad_objective_values_fail_the_trial_and_the_study_goes_on(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(OBJECTIVE)
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = devnas(
        "search",
        "--storage",
        url,
        "--study",
        "bad",
        "--objective",
        "bad.py:objective",
        "--directions",
        "minimize,minimize",
        "--sampler",
        "random",
        "--trials",
        "4",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    study = optuna.load_study(study_name="bad", storage=url)
    states = [t.state for t in study.trials]
    assert states[:3] == [optuna.trial.TrialState.FAIL] * 3
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4
    assert "Pareto front of 'bad'" in result.stdout
