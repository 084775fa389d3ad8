"""Bad input to the ``devnas`` command: one clear line, a non-zero exit, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
import re
import subprocess
import sys

import optuna
import pytest

from optuna_devnas.cli import main


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
    # Failures count against the budget of 4 trials (docs/cli.md).
    assert states == [optuna.trial.TrialState.FAIL] * 3 + [optuna.trial.TrialState.COMPLETE]
    assert "Pareto front of 'bad'" in result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["pareto", "--study", "s"],
        ["export", "--study", "s", "--trial", "0", "--output", "out"],
        ["worker", "--study", "s"],
        ["mlflow-sync", "--study", "s"],
    ],
    ids=lambda argv: argv[0],
)
def test_read_only_commands_never_create_a_database(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for url, path in [
        ("sqlite:///typo.db", tmp_path / "typo.db"),
        (f"sqlite:///{tmp_path / 'absent.db'}", tmp_path / "absent.db"),
    ]:
        assert main([*argv, "--storage", url]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"there is no database file '{path}'" in err[0], err
        assert not path.exists()
    assert sorted(tmp_path.iterdir()) == []


def test_search_help_shows_every_default_and_meaning(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in [
        "--trials X trials the study runs to an end, all workers together (see docs/cli.md) "
        "(default: 30)",
        "--storage X Optuna storage URL (postgresql://... for many machines) "
        "(default: sqlite:///devnas.db)",
        "(default: val_error,latency_ms,params)",
        "--k X networks trained per stage of the dpp sampler (default: 8)",
        "--latency-table X JSON table from 'devnas profile'",
        "--max-failures X trials failing in a row before the search stops (default: 5)",
        "peak_memory",
    ]:
        assert expected in text, expected


def test_quiet_means_quiet(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(
        "import warnings\n\n\ndef objective(trial, space, data):\n"
        "    arch = space.suggest(trial)\n"
        "    warnings.warn('a library warning, every trial', UserWarning)\n"
        "    return float(arch.n_layers), 1.0 / arch.n_layers\n"
    )
    args = ["--objective", "good.py:objective", "--directions", "minimize,minimize"]
    args += ["--sampler", "random", "--trials", "3", "--storage", "sqlite:///q.db"]
    quiet = devnas("search", *args, "--study", "quiet", "--quiet", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    out = quiet.stdout.strip().splitlines()
    assert out[0].startswith("Pareto front of 'quiet': ")
    assert out[-1].startswith("Study 'quiet' is kept in sqlite:///")
    loud = devnas("search", *args, "--study", "loud", cwd=tmp_path)
    assert loud.returncode == 0, loud.stderr
    # No Optuna log line, and a repeated warning shown once.
    assert "[I " not in loud.stderr and "finished with value" not in loud.stderr
    assert loud.stderr.count("UserWarning: a library warning, every trial") == 1
    rows = [line for line in loud.stdout.splitlines() if re.match(r" +\d+/3 ", line)]
    assert len(rows) == 3
