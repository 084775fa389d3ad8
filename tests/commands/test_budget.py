"""The trial budget in storage: workers together stop at exactly the budget."""

from __future__ import annotations

from pathlib import Path
import threading

import optuna
import pytest

from optuna_devnas.commands._attrs import FAILURE_ATTR, SURPLUS_ATTR
from optuna_devnas.commands._budget import (
    BudgetSpent,
    BudgetState,
    TrialBudget,
    ended,
    holds_place,
)
from optuna_devnas.commands._config import SearchConfig
from optuna_devnas.commands._job import SearchJob
from optuna_devnas.commands._storage import load_study

TrialState = optuna.trial.TrialState


def test_which_trials_end_and_which_hold_a_place() -> None:
    make = optuna.trial.create_trial
    cases = [
        (make(value=1.0), True, True),
        (make(state=TrialState.PRUNED), True, True),
        (make(state=TrialState.FAIL, user_attrs={FAILURE_ATTR: "E: x"}), True, True),
        (make(state=TrialState.FAIL), False, False),  # a dead or interrupted worker's
        (make(state=TrialState.WAITING), False, True),
    ]
    for trial, is_ended, holds in cases:
        assert (ended(trial), holds_place(trial)) == (is_ended, holds), trial.state
    study = optuna.create_study()
    running = study.ask()
    study._storage.set_trial_system_attr(running._trial_id, SURPLUS_ATTR, True)
    assert not holds_place(study.trials[0])


def test_a_trial_past_the_budget_is_failed_as_surplus_before_it_is_planned() -> None:
    study = optuna.create_study()
    study.add_trials([optuna.trial.create_trial(value=v) for v in (1.0, 2.0)])
    running = study.ask()
    TrialBudget(n_trials=3).reserve(study, study.trials[2])  # the third place is its own
    late = study.ask()
    with pytest.raises(BudgetSpent, match="past the budget of 3 trials"):
        TrialBudget(n_trials=3).reserve(study, study.trials[3])
    assert study.trials[3].state == TrialState.FAIL
    assert study.trials[3].system_attrs[SURPLUS_ATTR] is True
    assert BudgetState.of(study.trials) == BudgetState(ended=2, held=3, running=1, waiting=0)
    del running, late
    with pytest.raises(ValueError, match="Got n_trials=0"):
        TrialBudget(n_trials=0)


SLEEPY = """
import time

def objective(trial, space, data):
    arch = space.suggest(trial)
    time.sleep(0.3)
    return float(arch.n_layers), float(len(arch.layers[0]))
"""


@pytest.mark.parametrize("n_workers", [4])
def test_workers_together_stop_at_the_budget_exactly(tmp_path: Path, n_workers: int) -> None:
    (tmp_path / "obj.py").write_text(SLEEPY)
    config = SearchConfig(
        storage=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        objective=f"{tmp_path / 'obj.py'}:objective",
        directions=["minimize", "minimize"],
        sampler="random",
        trials=10,
    )
    SearchJob(config).create_study()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            study, stored = load_study(config.storage, config.study)
            job = SearchJob(stored)
            job.optimize(job.attach(study), n_trials=config.trials, show_progress=False)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(n_workers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert errors == []
    trials = optuna.load_study(study_name="devnas", storage=config.storage).trials
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == config.trials
    # Only surplus trials, failed before planning, may be left over from races.
    assert all(t.system_attrs.get(SURPLUS_ATTR) for t in trials if t.state != TrialState.COMPLETE)
