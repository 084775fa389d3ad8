from __future__ import annotations

import csv
import io

from matplotlib.figure import Figure
import numpy as np
import optuna
import pytest

from optuna_devnas.tracking._pareto import front_rows, plot_front, rows_to_csv


def test_front_rows_have_the_same_columns_and_csv_round_trips() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.optimize(
        lambda t: (t.suggest_float("x", 0, 1), 1 - t.params["x"] ** 2) if t.number % 2 else
        (t.suggest_int("y", 0, 3) + 1.0, 0.5),
        n_trials=6,
    )  # fmt: skip
    front = study.best_trials
    rows = front_rows(front, ["err", "lat"], {t.number: f"run{t.number}" for t in front}, {})
    assert [row["trial"] for row in rows] == sorted(t.number for t in front)
    assert len({tuple(row) for row in rows}) == 1  # same columns everywhere
    parsed = list(csv.DictReader(io.StringIO(rows_to_csv(rows))))
    assert [int(row["trial"]) for row in parsed] == [row["trial"] for row in rows]
    for row, trial in zip(parsed, sorted(front, key=lambda t: t.number), strict=True):
        assert float(row["err"]) == pytest.approx(trial.values[0])
        assert row["run_id"] == f"run{trial.number}"
    assert rows_to_csv([]) == ""


@pytest.mark.parametrize(("n_objectives", "panels"), [(1, 1), (2, 1), (5, 6)])
def test_plot_front_draws_one_panel_per_objective_pair(n_objectives: int, panels: int) -> None:
    rng = np.random.default_rng(0)
    values = rng.random((12, n_objectives))
    on_front = np.arange(12) < 3
    feasible = np.arange(12) % 4 != 0
    figure = plot_front(values, on_front, feasible, [f"m{i}" for i in range(n_objectives)], "s")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == panels
    first = figure.axes[0]
    points = sum(len(collection.get_offsets()) for collection in first.collections)
    assert points == 12  # every trial drawn exactly once
    assert first.get_ylabel() == ("m0" if n_objectives == 1 else "m1")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_plot_front_names_the_front_and_which_way_is_better() -> None:
    values = np.array([[0.1, 5.0, 2.0], [0.3, 1.0, 1.0], [0.5, 6.0, 0.5], [0.4, 2.0, 3.0]])
    on_front = np.array([True, True, False, False])
    figure = plot_front(
        values, on_front, np.ones(4, bool), ["err", "lat", "acc"], "s",
        numbers=[10, 11, 12, 13], directions=["minimize", "minimize", "maximize"],
    )  # fmt: skip
    assert len(figure.axes) == 3  # three objectives: three panels, one row
    assert figure.get_size_inches()[0] < 15
    first = figure.axes[0]
    assert first.get_xlabel() == "err (lower is better)"
    assert figure.axes[1].get_ylabel() == "acc (higher is better)"
    assert sorted(text.get_text() for text in first.texts) == ["#10", "#11"]  # the front only
