from __future__ import annotations

from pathlib import Path
import subprocess
import sys

from optuna_devnas.objectives import LatencyTable
from optuna_devnas.spaces import CellSpace

ROOT = Path(__file__).resolve().parents[2]


def test_example_profiles_predicts_and_measures(tmp_path: Path) -> None:
    table_path = tmp_path / "table.json"
    command = [
        sys.executable,
        str(ROOT / "examples" / "latency_table.py"),
        *("--max-layers", "2", "--architectures", "3", "--min-run-time", "0.002"),
        *("--rounds", "1", "--calibration", "3", "--output", str(table_path)),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Profiled 45 entries")
    header = lines.index(next(line for line in lines if line.startswith("cell ")))
    for line in lines[header + 1 : header + 4]:
        *_, predicted, measured, error = line.split()
        assert float(predicted) > 0 and float(measured) > 0 and error.endswith("%")
    assert lines[-1].startswith("for_space(") and lines[-1].endswith(" ms")
    table = LatencyTable.load(table_path, space=CellSpace(max_layers=2), input_shape=(1, 8, 8))
    assert len(table.entries) == 45
