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
