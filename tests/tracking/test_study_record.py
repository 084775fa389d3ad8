from __future__ import annotations

import numpy as np
import optuna
from optuna._hypervolume import compute_hypervolume
import pytest

from optuna_devnas.tracking._study_record import (
    check_bounds,
    normalized_hypervolume,
    progress_metrics,
    study_params,
)

MIN, MAX = optuna.study.StudyDirection.MINIMIZE, optuna.study.StudyDirection.MAXIMIZE


@pytest.mark.parametrize("n_objectives", [2, 3])
def test_hypervolume_agrees_with_optunas_on_the_scaled_points(n_objectives: int) -> None:
    rng = np.random.default_rng(n_objectives)
    bounds = [(0.0, 1.0), (100.0, 0.0), (0.0, 50.0)][:n_objectives]  # the middle one maximized
    values = rng.uniform(-0.2, 1.2, size=(30, n_objectives)) * [1.0, 100.0, 50.0][:n_objectives]
    best = np.array([b for b, _ in bounds])
    worst = np.array([w for _, w in bounds])
    scaled = np.clip((values - best) / (worst - best), 0.0, None)  # 0 = best bound, minimized
    inside = scaled[np.all(scaled < 1.0, axis=1)]
    expected = compute_hypervolume(inside, np.ones(n_objectives))
    assert 0.0 < expected < 1.0
    assert normalized_hypervolume(values, bounds) == pytest.approx(expected, rel=1e-12)


def test_hypervolume_by_hand() -> None:
    bounds = [(0.0, 1.0), (10.0, 0.0)]  # minimize the first, maximize the second
    assert normalized_hypervolume(np.array([[0.5, 5.0]]), bounds) == pytest.approx(0.25)
    two = np.array([[0.5, 5.0], [0.2, 2.0]])  # scaled (0.5, 0.5) and (0.2, 0.8)
    assert normalized_hypervolume(two, bounds) == pytest.approx(0.25 + 0.3 * 0.2)
    assert normalized_hypervolume(np.array([[1.5, 5.0]]), bounds) == 0.0  # beyond the worst
    assert normalized_hypervolume(np.array([[-1.0, 20.0]]), bounds) == 1.0  # beyond the best
    assert normalized_hypervolume(np.array([[0.25]]), [(0.0, 1.0)]) == pytest.approx(0.75)


def test_bounds_are_checked_against_the_directions() -> None:
    assert check_bounds([(0, 1), ("1", 0)], [MIN, MAX]) == [(0.0, 1.0), (1.0, 0.0)]
    with pytest.raises(ValueError, match=r"\(1.0, 0.0\) is not \(best, worst\) for .* minimize"):
        check_bounds([(1, 0)], [MIN])
    with pytest.raises(ValueError, match="has 2 objective"):
        check_bounds([(0, 1)], [MIN, MIN])
    with pytest.raises(ValueError, match="pair of numbers"):
        check_bounds([0, 1], [MIN, MIN])
    with pytest.raises(ValueError, match="distinct finite"):
        check_bounds([(0, float("inf"))], [MIN])


def test_params_and_metrics_of_a_study() -> None:
    sampler = optuna.samplers.TPESampler(n_startup_trials=3, seed=0)
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 1:
            raise optuna.TrialPruned()
        return x, 2 * x

    study.optimize(objective, n_trials=4)
    study.ask()  # a trial still running
    params = study_params(study, ["err", "acc"], sampler, [(0.0, 1.0), (2.0, 0.0)])
    assert params["sampler"] == "TPESampler"
    assert params["sampler.n_startup_trials"] == "3"
    assert params["objective.err"] == "minimize" and params["objective.acc"] == "maximize"
    assert params["space.x"].startswith("FloatDistribution(")
    assert params["hypervolume.bounds"] == "err 0 to 1; acc 2 to 0"

    metrics = progress_metrics(study, ["err", "acc"], [(0.0, 1.0), (2.0, 0.0)])
    curves: dict[str, list[tuple[int, float]]] = {}
    for metric in metrics:
        curves.setdefault(metric.key, []).append((metric.step, metric.value))
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    steps = [1, 2, 3, 4]  # every finished trial, the pruned one included; trial 0 completes
    assert [step for step, _ in curves["best.err"]] == steps
    assert curves["best.err"][-1][1] == min(t.values[0] for t in complete)
    assert curves["best.acc"][-1][1] == max(t.values[1] for t in complete)
    values = np.array([t.values for t in complete])
    assert curves["hypervolume"][-1] == (4, normalized_hypervolume(values, [(0, 1), (2, 0)]))
    assert curves["n_complete"] == [(4, 3.0)] and curves["n_pruned"] == [(4, 1.0)]
    assert curves["n_running"] == [(4, 1.0)] and curves["n_fail"] == [(4, 0.0)]
    last = progress_metrics(study, ["err", "acc"], None, history=False)
    assert "hypervolume" not in {m.key for m in last}
    assert [(m.step, m.value) for m in last if m.key == "best.err"] == [curves["best.err"][-1]]
