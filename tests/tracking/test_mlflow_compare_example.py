from __future__ import annotations

from pathlib import Path
import subprocess
import sys

ROOT = Path(__file__).resolve().parents[2]


def test_example_compares_two_studies_read_back_from_one_experiment(
    tmp_path: Path, sqlite_uri: str
) -> None:
    command = [sys.executable, str(ROOT / "examples" / "mlflow_compare.py"), "--trials", "2"]
    command += ["--train-size", "100", "--tracking-uri", sqlite_uri]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    table = out.split("MLflow experiment 'devnas-compare'")[1].splitlines()[2:4]
    rows = [line.split() for line in table]
    assert [row[0].split("-")[0] for row in rows] == ["dpp", "nsga2"]
    assert rows[1][1] == "NSGAIISampler"
    for row in rows:
        runs, best, smallest, front = int(row[2]), float(row[3]), float(row[4]), int(row[5])
        assert runs == 2 and 0.0 <= best <= 1.0 and smallest > 0 and 1 <= front <= 2
        assert 0.0 < float(row[6]) < 1.0  # the hypervolume, in the fixed box
    assert out.count("(runs tagged pareto=true)") == 2
    assert f"mlflow ui --backend-store-uri {sqlite_uri}" in out
    assert not (tmp_path / "mlflow.db").exists()  # the given store was used, not the default
