from __future__ import annotations

from pathlib import Path
import subprocess
import sys

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_a_search_and_prints_the_pareto_front(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--trials", "3", "--epochs", "1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Pareto front:" in out
    front = out.split("Pareto front:")[1].strip().splitlines()[1:]
    assert 1 <= len(front) <= 3
    for line in front:
        number, error, latency, params, cell = line.split()
        assert 0.0 <= float(error) <= 1.0 and float(latency) > 0 and int(params) > 0
