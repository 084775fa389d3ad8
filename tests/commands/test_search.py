"""``devnas search`` options a newcomer looks for: --latency-table, peak_memory, --k."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import optuna
import pytest

from optuna_devnas.cli import main
from optuna_devnas.objectives import LatencyTable, PeakMemory
from optuna_devnas.samplers import STAGE_KEY
from optuna_devnas.spaces import CellSpace

SPACE = CellSpace(max_layers=1, depths=(1, 1), growth_rates=(8, 16), stem_channels=8)
MACRO = ["--depths", "1,1", "--growth-rates", "8,16", "--stem-channels", "8"]


@pytest.fixture(scope="module")
def table_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("table") / "board.json"
    table = LatencyTable.profile(
        SPACE, input_shape=(1, 1, 8, 8), min_run_time=0.001, rounds=1, calibration=2
    )
    table.save(path)
    return path


def test_latency_is_predicted_from_a_profiled_table(
    tmp_path: Path, table_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["search", "--latency-table", str(table_file), "--max-layers", "1", *MACRO]
    argv += ["--objectives", "latency_ms,params", "--sampler", "random", "--trials", "3"]
    assert main([*argv, "--quiet"]) == 0
    study = optuna.load_study(study_name="devnas", storage="sqlite:///devnas.db")
    table = LatencyTable.load(table_file)
    for trial in study.trials:
        arch = SPACE.from_params(trial.params)
        assert trial.values[0] == pytest.approx(1e3 * table.predict(arch))


def test_a_table_for_another_space_is_refused_before_the_search(
    tmp_path: Path, table_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    argv = ["search", "--storage", storage, "--latency-table", str(table_file), *MACRO]
    assert main([*argv, "--max-layers", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "this latency table was profiled for" in err[0], err
    assert main([*argv[:-2], "--latency-table", str(tmp_path / "none.json")]) == 2
    assert "No such file or directory" in capsys.readouterr().err


def test_peak_memory_is_an_objective(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["search", "--objectives", "params,peak_memory", "--max-layers", "1", *MACRO]
    assert main([*argv, "--sampler", "random", "--trials", "2", "--quiet"]) == 0
    study = optuna.load_study(study_name="devnas", storage="sqlite:///devnas.db")
    assert study.metric_names == ["params", "peak_memory"]
    memory = PeakMemory(input_shape=(1, 1, 8, 8))
    for trial in study.trials:
        assert trial.values[1] == memory(SPACE.from_params(trial.params))


STAGES = """
def objective(trial, space, data):
    arch = space.suggest(trial)
    return float(len(arch.layers[0])) / arch.n_layers
"""


@pytest.mark.slow
def test_k_is_the_stage_size_of_the_dpp_sampler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "obj.py").write_text(STAGES)
    argv = ["search", "--objective", "obj.py:objective", "--directions", "minimize"]
    argv += ["--max-layers", "2", "--k", "2", "--trials", "10", "--quiet"]
    assert main(argv) == 0
    study = optuna.load_study(study_name="devnas", storage="sqlite:///devnas.db")
    stages = Counter(t.system_attrs.get(STAGE_KEY) for t in study.trials)
    # The first trial goes to the independent sampler (the space is read from the trials),
    # stage 1 trains the six one-layer cells, stage 2 the k = 2 best children, then the
    # search goes on past the last stage.
    assert stages[2] == 2 and sum(stages.values()) == 10, stages
