"""Progress lines: aligned, readable numbers, planning on its own line, trials timed from start."""

from __future__ import annotations

import io
import time

import optuna
import pytest

from optuna_devnas.commands import _progress
from optuna_devnas.commands._attrs import FAILURE_ATTR
from optuna_devnas.commands._progress import Progress, readable
from optuna_devnas.samplers import STAGE_KEY
from optuna_devnas.spaces import ARCHITECTURE_ATTR


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (62170.0, "62,170"),
        (62170, "62,170"),
        (1234567.8, "1,234,568"),
        (762.0, "762"),
        (0.031746, "0.03175"),
        (0.8194444, "0.8194"),
        (12.345678, "12.35"),
        (0.0, "0"),
        (3.2e-06, "3.200e-06"),
        (float("nan"), "nan"),
        ("conv1x1", "conv1x1"),
    ],
)
def test_readable_numbers(value: object, shown: str) -> None:
    assert readable(value) == shown


def finished(study: optuna.Study, values: list[float], stage: int, layers: list[str]) -> int:
    study.add_trial(
        optuna.trial.create_trial(
            values=values,
            user_attrs={ARCHITECTURE_ATTR: {"layers": layers}},
            system_attrs={STAGE_KEY: stage},
        )
    )
    return len(study.trials) - 1


def test_one_aligned_line_per_trial_timed_from_its_start() -> None:
    stream = io.StringIO()
    study = optuna.create_study(directions=["minimize"] * 3)
    progress = Progress(names=["val_error", "latency_ms", "params"], n_trials=30, stream=stream)
    progress.header()
    first = finished(study, [0.0317, 0.08147, 62170.0], 1, ["conv1x1"])
    time.sleep(0.3)  # planning: not charged to the trial
    progress.started(first)
    progress(study, study.trials[first])
    second = finished(study, [0.8194444, 12.5, 1146.0], 12, ["conv3x3", "bn_relu"])
    progress.started(second)
    progress(study, study.trials[second])
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL, user_attrs={FAILURE_ATTR: "ValueError: nan"}
        )
    )
    progress(study, study.trials[2])
    header, *rows = stream.getvalue().splitlines()
    assert rows[0].split() == [
        "1/30",
        "0s",
        "0",
        "1",
        "0.0317",
        "0.08147",
        "62,170",
        "0.0",
        "conv1x1",
    ]
    assert rows[1].split()[4:] == ["0.8194", "12.5", "1,146", "0.0", "conv3x3-bn_relu"]
    assert rows[2].split()[:4] == ["3/30", "0s", "2", "-"]
    assert rows[2].endswith("FAIL ValueError: nan")
    # Every column ends where its name ends.
    for name in ["done", "trial", "stage", "val_error", "latency_ms", "params", "secs"]:
        end = header.index(name) + len(name)
        for row in rows[:2]:
            assert row[end - 1] != " " and (len(row) == end or row[end] == " "), (name, row)


def test_planning_gets_lines_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_progress, "SLOW_PLANNING_SECONDS", 0.05)
    monkeypatch.setattr(_progress, "SHOWN_PLANNING_SECONDS", 0.1)
    stream = io.StringIO()
    progress = Progress(names=["val_error"], n_trials=8, stream=stream)
    progress.done = 6
    with progress.planning(6) as plan:
        time.sleep(0.3)
        plan.stage = 2
    with progress.planning(7):
        pass  # quick: no line
    with pytest.raises(KeyboardInterrupt), progress.planning(8):
        raise KeyboardInterrupt
    lines = [line.split() for line in stream.getvalue().splitlines()]
    assert lines[0][:4] == ["6/8", "0s", "6", "-"] and lines[0][4:] == ["planning..."]
    assert lines[1][2:6] == ["6", "2", "planned", "in"] and float(lines[1][6]) >= 0.3
    assert len(lines) == 2


def test_waiting_is_said_once_per_count_and_disabled_progress_says_nothing() -> None:
    stream = io.StringIO()
    progress = Progress(names=["v"], n_trials=4, stream=stream)
    progress.waiting(2)
    progress.waiting(2)
    progress.waiting(1)
    assert [line.split(None, 3)[3] for line in stream.getvalue().splitlines()] == [
        "waiting for 2 trial(s) running in other workers",
        "waiting for 1 trial(s) running in other workers",
    ]
    unused = io.StringIO()
    Progress(names=["v"], n_trials=4, stream=unused).header()
    assert unused.getvalue() == ""  # no trial ran: no column names either
    quiet = io.StringIO()
    silent = Progress(names=["v"], n_trials=4, stream=quiet, enabled=False)
    silent.header()
    silent.waiting(1)
    with silent.planning(0):
        time.sleep(0.01)
    assert quiet.getvalue() == ""
