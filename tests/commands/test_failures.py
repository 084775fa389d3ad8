"""A failing objective: bounded failures in a row, each with its reason, counted in the budget."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from optuna_devnas.cli import main
from optuna_devnas.commands._attrs import FAILURE_ATTR
from optuna_devnas.commands._config import SearchConfig
from optuna_devnas.commands._failures import FailureLimit, SearchFailedError, describe
from optuna_devnas.commands._job import SearchJob

TrialState = optuna.trial.TrialState

FAILING = {
    "returns infinity": ("return math.inf, 1.0", "but every value must be finite"),
    "raises": ("raise RuntimeError('the data file is missing')", "RuntimeError: the data file"),
    "returns 3 values": ("return 1.0, 2.0, 3.0", "Got 3 objective values, but the study has 2"),
    "returns a string": ("return 'good', 1.0", "could not convert string to float: 'good'"),
}


def write_objective(folder: Path, body: str) -> str:
    path = folder / "userobj.py"
    path.write_text(
        "import math\n\n\ndef fn(trial, space, data):\n"
        "    arch = space.suggest(trial)\n"
        f"    {body}\n"
    )
    return f"{path}:fn"


def search_args(folder: Path, objective: str, *extra: str) -> list[str]:
    return [
        "search",
        "--storage",
        f"sqlite:///{folder / 'db.sqlite3'}",
        "--study",
        "s",
        "--objective",
        objective,
        "--directions",
        "minimize,minimize",
        "--sampler",
        "random",
        *extra,
    ]


@pytest.mark.timeout(120)  # the unbounded loop this replaces never ended
@pytest.mark.parametrize("kind", list(FAILING))
def test_an_objective_that_always_fails_stops_after_max_failures_saying_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    body, reason = FAILING[kind]
    argv = search_args(tmp_path, write_objective(tmp_path, body), "--trials", "30", "--quiet")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("devnas search: error: 5 trials in a row failed (max_failures=5)")
    assert reason in err[0] and "the last, trial 4:" in err[0]
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 5
    assert all(reason in t.user_attrs[FAILURE_ATTR] for t in study.trials)


def test_max_failures_is_configurable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    objective = write_objective(tmp_path, FAILING["raises"][0])
    argv = search_args(tmp_path, objective, "--trials", "30", "--max-failures", "2", "--quiet")
    assert main(argv) == 2
    assert "2 trials in a row failed (max_failures=2)" in capsys.readouterr().err


def test_failures_count_against_the_budget_and_a_success_resets_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Trials 0, 1, 3 and 4 fail, never more than 2 in a row: the search goes on, and its 6
    # trials are 4 failures and 2 complete ones.
    body = (
        "if trial.number in (0, 1, 3, 4):\n        raise ValueError('bad cell')\n"
        "    return 1.0, 2.0"
    )
    argv = search_args(
        tmp_path, write_objective(tmp_path, body), "--trials", "6", "--max-failures", "3"
    )
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "FAIL ValueError: bad cell" in out
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL] * 2 + [TrialState.COMPLETE] + [TrialState.FAIL] * 2 + [
        TrialState.COMPLETE
    ]


def test_a_search_whose_every_trial_failed_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = search_args(tmp_path, write_objective(tmp_path, FAILING["raises"][0]), "--trials", "3")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "All 3 trials of the search failed; the last, trial 2: RuntimeError" in err


def test_the_python_job_raises_search_failed_error(tmp_path: Path) -> None:
    config = SearchConfig(
        storage=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        objective=write_objective(tmp_path, FAILING["returns infinity"][0]),
        directions=["minimize", "minimize"],
        sampler="random",
        trials=50,
        max_failures=3,
    )
    job = SearchJob(config)
    study = job.create_study()
    with pytest.raises(SearchFailedError, match="3 trials in a row failed"):
        job.optimize(study, n_trials=config.trials, show_progress=False)
    assert len(study.trials) == 3


def test_failure_limit_counts_only_objective_failures() -> None:
    study = optuna.create_study()
    limit = FailureLimit(max_failures=2)
    failed = optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={FAILURE_ATTR: "E: x"})
    died = optuna.trial.create_trial(state=TrialState.FAIL)  # a dead worker's: retried
    complete = optuna.trial.create_trial(value=1.0)
    limit(study, failed)
    limit(study, died)
    limit(study, complete)
    limit(study, failed)
    with pytest.raises(SearchFailedError, match="2 trials in a row failed"):
        limit(study, failed)
    with pytest.raises(ValueError, match="Got max_failures=0"):
        FailureLimit(max_failures=0)


def test_describe_keeps_one_line() -> None:
    assert describe(ValueError("two\nlines")) == "ValueError: two lines"
    assert len(describe(RuntimeError("x" * 1000))) == 300
