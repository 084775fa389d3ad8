"""``devnas pareto``: the front in readable numbers, and one line while there is none yet."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from optuna_devnas.cli import main


def study_with(tmp_path: Path, *trials: optuna.trial.FrozenTrial) -> str:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    study = optuna.create_study(study_name="s", storage=url, directions=["minimize"] * 2)
    study.set_metric_names(["val_error", "params"])
    study.add_trials(trials)
    return url


@pytest.mark.parametrize(
    "trials",
    [
        [],
        [optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL)],
        [optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING)],
    ],
    ids=["no trial", "a failed trial", "a waiting trial"],
)
def test_a_study_without_a_complete_trial_says_so_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trials: list[optuna.trial.FrozenTrial]
) -> None:
    url = study_with(tmp_path, *trials)
    # A running trial too: the moment one checks on a search that just started.
    study = optuna.load_study(study_name="s", storage=url)
    study.ask()
    assert main(["pareto", "--storage", url, "--study", "s"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "Study 's' has no complete trial yet."
    assert captured.err == ""
    assert main(["pareto", "--storage", url, "--study", "s", "--csv"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "trial,val_error,params,architecture"
    assert captured.err.strip() == "Study 's' has no complete trial yet."


def test_the_front_is_printed_in_readable_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = study_with(
        tmp_path,
        optuna.trial.create_trial(values=[0.0317, 62170.0]),
        optuna.trial.create_trial(values=[0.5, 1234567.0]),  # dominated
        optuna.trial.create_trial(values=[0.25, 800.0]),
    )
    assert main(["pareto", "--storage", url, "--study", "s"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "Pareto front of 's': 2 trial(s)"
    assert lines[1].split() == ["trial", "val_error", "params", "architecture"]
    assert lines[2].split() == ["0", "0.0317", "62,170"]
    assert lines[3].split() == ["2", "0.25", "800"]
    # Columns right-aligned under their names.
    end = lines[1].index("params") + len("params")
    assert lines[2].index("62,170") + len("62,170") == end
    assert lines[3].index("800") + len("800") == end
    assert main(["pareto", "--storage", url, "--study", "s", "--csv"]) == 0
    assert "0,0.0317,62170.0," in capsys.readouterr().out
