from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest

from optuna_devnas.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_a_search_keeps_it_and_prints_the_pareto_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--trials", "3", "--epochs", "1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    where = f"sqlite:///{tmp_path / 'demo.db'}"
    assert lines[0].startswith(f"devnas search: study 'demo' in {where} (0/3 trials done)")
    assert lines[-1].startswith(f"Study 'demo' is kept in {where}")
    start = next(i for i, line in enumerate(lines) if line.startswith("Pareto front of 'demo'"))
    assert lines[start + 1].split() == [
        "trial",
        "val_error",
        "latency_ms",
        "params",
        "architecture",
    ]
    front = lines[start + 2 : -1]
    assert 1 <= len(front) <= 3
    for line in front:
        number, error, latency, params, cell = line.split()
        assert 0.0 <= float(error) <= 1.0 and float(latency) > 0
        assert int(params.replace(",", "")) > 0
    # The study is kept: devnas pareto reads it right after.
    assert main(["pareto", "--storage", where, "--study", "demo"]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == front
