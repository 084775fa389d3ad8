"""The exhaustive CellSpace table: its builder, the problem over it, the benchmark end to end."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import cellspace, cellspace_table
from benchmarks._cellspace_problem import DEFAULT_TABLE, CellSpaceProblem
from optuna_devnas.spaces import CellSpace

needs_table = pytest.mark.skipif(
    not DEFAULT_TABLE.is_file(), reason=f"CellSpace table not found at {DEFAULT_TABLE}"
)


def test_table_builder_trains_each_network_once_and_resumes(tmp_path: Path) -> None:
    work, output = tmp_path / "work", tmp_path / "cellspace_digits.csv.gz"
    argv = [
        f"--work={work}",
        f"--output={output}",
        "--max-layers=2",
        "--seeds=0,1",
        "--epochs=1",
        "--rounds=2",
    ]
    assert cellspace_table.main(argv) == 0
    table = pd.read_csv(output)
    space = CellSpace(max_layers=2)
    assert len(table) == space.size() == 24
    assert list(table.columns) == list(cellspace_table.COLUMNS)
    # 6 one-layer cells and their 12 distinct children: X-identity shares X's training.
    trained = [json.loads(line) for line in (work / "training.jsonl").read_text().splitlines()]
    assert len(trained) == 18 * 2
    rows = table.set_index("architecture")
    same = rows.loc["conv3x3-identity"].drop(["network", "n_layers"])
    assert same.equals(rows.loc["conv3x3"].drop(["network", "n_layers"]))
    assert rows.loc["conv3x3-identity", "network"] == "conv3x3"
    seeds = rows["val_error_seeds"].str.split(";").apply(lambda v: np.array(v, dtype=float))
    assert np.allclose(seeds.apply(np.mean), rows["val_error_mean"], atol=1e-6)
    assert np.allclose(seeds.apply(np.std), rows["val_error_std"], atol=1e-6)
    assert ((rows["val_error_mean"] >= 0) & (rows["val_error_mean"] <= 1)).all()
    assert (rows["latency_ms"] > 0).all() and (rows["latency_table_ms"] > 0).all()
    assert rows.loc["conv3x3", "params"] > rows.loc["conv1x1", "params"]
    # The table's bytes do not depend on when it was written; a second run trains nothing.
    first = output.read_bytes()
    assert gzip.decompress(first).decode().startswith("architecture,network,n_layers")
    assert cellspace_table.main(argv) == 0
    assert output.read_bytes() == first
    assert len((work / "training.jsonl").read_text().splitlines()) == 36
    assert "- latency: 2 interleaved rounds" in (work / "about.md").read_text()


@needs_table
def test_committed_table_holds_every_architecture_once() -> None:
    table = pd.read_csv(DEFAULT_TABLE)
    space = CellSpace()
    names = {str(a) for n in range(1, 5) for a in space.enumerate(n)}
    assert set(table["architecture"]) == names and len(table) == 456
    assert table["network"].nunique() == 342
    for column in ("val_error_mean", "latency_ms", "latency_table_ms", "params", "flops"):
        by_network = table.groupby("network")[column].nunique()
        assert (by_network == 1).all(), column  # rows of one network share its values
    assert (table["val_error_mean"] < 0.9).all() and (table["latency_ms"] > 0).all()


@needs_table
@pytest.mark.parametrize("objectives", [("error", "latency"), ("error", "latency", "params")])
def test_problem_reads_the_table_and_its_front(objectives: tuple[str, ...]) -> None:
    problem = CellSpaceProblem.load(DEFAULT_TABLE, objectives=objectives)
    assert len(problem.values) == 456 and problem.objectives == objectives
    everything = np.array(list(problem.values.values()))
    assert problem.hypervolume_gap(everything) == pytest.approx(0.0, abs=1e-9)
    one = np.array([problem.values["conv1x1"]])
    assert 0 < problem.hypervolume_gap(one) < 100
    params = problem.space.to_params(problem.space.architecture(["conv3x3", "bn_relu"]))
    for index, fn in problem.cheap.items():
        assert fn(params) == problem.values["conv3x3-bn_relu"][index]
    with pytest.raises(ValueError, match="latency"):
        CellSpaceProblem.load(DEFAULT_TABLE, latency="latency_us")


@needs_table
def test_benchmark_end_to_end(tmp_path: Path) -> None:
    results, output = tmp_path / "runs.jsonl", tmp_path / "cellspace.md"
    argv = [
        "--seeds=1",
        "--budgets=6,14",
        "--samplers=dpp-cheap,dpp-pareto,random",
        "--objectives=error,latency",
        "--objectives=error,latency,params",
        f"--results={results}",
        f"--output={output}",
    ]
    assert cellspace.main(argv) == 0
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(records) == 3 * 2
    for record in records:
        assert record["error"] is None, record["error"]
        assert record["completed"] == 14
        if record["sampler"] != "random":
            assert record["duplicates"] == 0  # no network trained twice
        assert 0 <= record["gaps"]["14"] <= record["gaps"]["6"] <= 100
    # DPPSampler's first six trials are DPP-Net's stage 1: every one-layer cell.
    dpp = next(r for r in records if r["sampler"] == "dpp-cheap")
    problem = CellSpaceProblem.load(DEFAULT_TABLE)
    stage_one = sorted(tuple(v) for v in dpp["values"][:6])
    assert stage_one == sorted(problem.values[str(a)] for a in problem.space.initial())
    text = output.read_text()
    assert "CellSpace on digits: validation error vs latency (latency_ms) vs parameters" in text
