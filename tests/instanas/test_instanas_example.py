from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tuning_example_prints_a_pareto_front_of_error_and_latency(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "instanas_tune.py"),
            "--trials",
            "2",
            "--data",
            "digits",
            "--width-mult",
            "0.25",
            "--epochs",
            "1,1,0",
            "--train-images",
            "128",
            "--latency-images",
            "4",
            "--table-rounds",
            "1",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("2 trials; option latency table: OptionLatencyTable(blocks=17")
    rows = out.split("Pareto front:")[1].strip().splitlines()[1:]
    assert 1 <= len(rows) <= 2
    for row in rows:
        number, error, ms, pos_w, neg_w, upper_end, children = row.split()
        assert 0.0 <= float(error) <= 1.0 and float(ms) > 0 and int(children) >= 1
        assert 3.0 <= float(pos_w) <= 50.0 and -10.0 <= float(neg_w) <= 0.0
    assert list(tmp_path.iterdir()) == []  # nothing left behind (no mlflow.db)
