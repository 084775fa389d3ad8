from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from optuna_devnas.samplers import STAGE_KEY

EXAMPLE = Path(__file__).parents[2] / "examples" / "dpp_sampler.py"


@pytest.mark.slow
def test_example_runs_two_stages(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("dpp_sampler_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    study = module.main(["--trials", "7", "--k", "1", "--epochs", "1"])
    assert [t.system_attrs[STAGE_KEY] for t in study.trials] == [1] * 6 + [2]
    assert 0.0 <= min(t.values[0] for t in study.trials) < 0.9  # Better than chance (0.9).
    out = capsys.readouterr().out
    assert "stage 2" in out and "predicted" in out and "Pareto front" in out
