"""The NAS-Bench-201 benchmark: table mapping, hypervolume gap by hand, the harness end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import nb201
from benchmarks._nb201_run import problem_for
from benchmarks._nb201_table import (
    DEFAULT_TABLE,
    EDGES,
    OPERATIONS,
    NB201Problem,
    arch_str,
    normalized_hypervolume,
    parse_arch_str,
)

needs_table = pytest.mark.skipif(
    not DEFAULT_TABLE.is_file(), reason=f"NAS-Bench-201 table not found at {DEFAULT_TABLE}"
)


def test_normalized_hypervolume_by_hand() -> None:
    lower, upper = np.array([0.0, 0.0]), np.array([1.0, 1.0])
    # Two rectangles up to the reference point (1.1, 1.1): 1.1 x 0.6 each, overlapping 0.6 x 0.6.
    two = np.array([[0.0, 0.5], [0.5, 0.0]])
    assert normalized_hypervolume(two, lower, upper) == pytest.approx(0.66 + 0.66 - 0.36)
    # A dominated point and a point beyond the reference point add nothing.
    more = np.vstack([two, [[0.6, 0.6], [1.2, 0.0]]])
    assert normalized_hypervolume(more, lower, upper) == pytest.approx(0.96)
    # Min-max scaling: error 10..20 and latency 0..2 map onto the same two points.
    scaled = np.array([[10.0, 1.0], [15.0, 0.0]])
    assert normalized_hypervolume(
        scaled, np.array([10.0, 0.0]), np.array([20.0, 2.0])
    ) == pytest.approx(0.96)
    assert normalized_hypervolume(np.empty((0, 2)), lower, upper) == 0.0


def test_hypervolume_gap_by_hand() -> None:
    problem = NB201Problem(
        dataset="cifar10",
        device="toy",
        latency_column="toy",
        values={"a": (0.0, 0.0), "b": (0.0, 1.0), "c": (1.0, 0.0)},
        lower=np.array([0.0, 0.0]),
        upper=np.array([1.0, 1.0]),
        front=("a",),
        front_hypervolume=1.1 * 1.1,
    )
    found = np.array([[0.0, 0.5], [0.5, 0.0]])
    assert problem.hypervolume_gap(found) == pytest.approx(100 * (1 - 0.96 / 1.21))
    assert problem.hypervolume_gap(np.array([[0.0, 0.0]])) == pytest.approx(0.0)


def test_arch_str_round_trip_and_errors() -> None:
    ops = ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "none")
    text = arch_str(ops)
    assert text == (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    )
    assert parse_arch_str(text) == ops
    with pytest.raises(ValueError, match="arch_str"):
        parse_arch_str(text.replace("~1", "~0"))
    with pytest.raises(ValueError, match="operations"):
        arch_str(ops[:5])


@needs_table
def test_problem_maps_through_arch_str() -> None:
    problem = problem_for(str(DEFAULT_TABLE), "cifar10", "raspi4")
    assert len(problem.values) == len(OPERATIONS) ** 6
    table = pd.read_csv(DEFAULT_TABLE, usecols=["arch_str", "acc_c10_test", "help_lat_ms_raspi4"])
    for row in table.sample(n=20, random_state=0).itertuples():
        ops = parse_arch_str(row.arch_str)
        params = {f"edge_{s}_{t}": op for (s, t), op in zip(EDGES, ops, strict=True)}
        error, latency = problem.values[problem.arch_of(params)]
        assert error == pytest.approx(100 - row.acc_c10_test)
        assert latency == pytest.approx(row.help_lat_ms_raspi4)
        assert problem.latency(params) == latency
    # The whole table and its front both have no gap; one architecture off the front has one.
    everything = np.array(list(problem.values.values()))
    assert problem.hypervolume_gap(everything) == pytest.approx(0.0, abs=1e-9)
    front = np.array([problem.values[a] for a in problem.front])
    assert problem.hypervolume_gap(front) == pytest.approx(0.0, abs=1e-9)
    assert 0 < problem.hypervolume_gap(np.array([problem.values[table.arch_str[0]]])) < 100
    with pytest.raises(ValueError, match="device"):
        NB201Problem.load(DEFAULT_TABLE, device="toaster")


@needs_table
def test_harness_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samplers = ["random", "nsga2", "tpe", "dpp-cheap"]
    results, output = tmp_path / "runs.jsonl", tmp_path / "nb201.md"
    argv = [
        "--problem=cifar10:raspi4",
        "--seeds=1",
        "--budgets=6,11",
        f"--samplers={','.join(samplers)}",
        "--timing-samplers=",
        f"--results={results}",
        f"--output={output}",
    ]
    assert nb201.main(argv) == 0
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted((r["sampler"], r["seed"]) for r in records) == sorted(
        (s, seed) for s in samplers for seed in range(1)
    )
    problem = problem_for(str(DEFAULT_TABLE), "cifar10", "raspi4")
    for record in records:
        assert record["error"] is None, record["error"]
        assert record["completed"] == 11 and len(record["wall"]) == 11
        first = np.array(record["values"][:6])
        assert record["gaps"]["6"] == pytest.approx(problem.hypervolume_gap(first))
        assert 0 <= record["gaps"]["11"] <= record["gaps"]["6"] <= 100  # more trials, no loss
    text = output.read_text()
    assert "| RandomSampler | 1 |" in text and "best peer" in text
    # Same seed, same first trials: random and NSGA-II's first generation are both random.
    by_key = {(r["sampler"], r["seed"]): r for r in records}
    assert by_key["random", 0]["values"][:6] == by_key["nsga2", 0]["values"][:6]
    # --resume finds every run in the results file and runs none again.
    assert nb201.main([*argv, "--resume"]) == 0
    assert "0 to run" in capsys.readouterr().out
    assert len(results.read_text().splitlines()) == len(records)


def test_first_seed_splits_the_seeds() -> None:
    args = nb201.parse_args(
        ["--problem=cifar10:raspi4", "--seeds=3", "--first-seed=1", "--samplers=random,tpe"]
    )
    assert sorted((s.sampler, s.seed) for s in nb201.plan(args)) == [
        ("random", 1),
        ("random", 2),
        ("tpe", 1),
        ("tpe", 2),
    ]
    with pytest.raises(SystemExit):
        nb201.parse_args(["--seeds=3", "--first-seed=3"])


def _square(x: int) -> dict[str, int]:
    return {"x": x, "square": x * x}


@pytest.mark.parametrize("jobs", [1, 2])
def test_run_all_skips_what_is_no_longer_needed(jobs: int) -> None:
    # ``needed`` is asked when a spec's turn comes, so a run done beside this one is skipped.
    asked: list[int] = []

    def needed(x: int) -> bool:
        asked.append(x)
        return x % 2 == 0

    records = list(nb201.run_all([0, 1, 2, 3, 4], jobs, _square, needed))

    assert sorted(r["square"] for r in records) == [0, 4, 16]
    assert asked == [0, 1, 2, 3, 4]  # each once, in order
