"""``devnas retarget`` on a study made by ``devnas search``: copy, new front, more trials."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from optuna_devnas._retarget import RETARGET_ATTR
from optuna_devnas.cli import main
from optuna_devnas.commands._config import CONFIG_ATTR
from optuna_devnas.objectives import LatencyTable
from optuna_devnas.spaces import CellSpace

QUICK = ["--min-run-time", "0.001", "--rounds", "1", "--calibration", "2"]


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("retarget")
    for name, threads in (("a.json", "1"), ("b.json", "2"), ("wide.json", "1")):
        shape = "1,16,16" if name == "wide.json" else "1,8,8"
        argv = ["profile", "--input-shape", shape, "--max-layers", "2", "--threads", threads]
        assert main([*argv, "-o", str(folder / name), *QUICK, "--quiet"]) == 0
    search = [
        "search",
        *("--storage", f"sqlite:///{folder / 'r.db'}", "--study", "pi", "--trials", "8"),
        *("--epochs", "1", "--max-layers", "2", "--k", "2"),
        *("--objectives", "val_error,latency_ms", "--latency-table", str(folder / "a.json")),
        *("--artifacts", str(folder / "weights"), "--quiet"),
    ]
    assert main(search) == 0
    return folder


def _args(folder: Path, *extra: str, table: str = "b.json") -> list[str]:
    return [
        "retarget",
        *("--storage", f"sqlite:///{folder / 'r.db'}", "--study", "pi"),
        *("--table", str(folder / table), "--quiet", *extra),
    ]


def test_copies_with_the_new_latency_and_prints_the_front_at_once(
    searched: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(_args(searched, "--to", "phone")) == 0
    out = capsys.readouterr().out
    assert "8 trial(s) of 'pi' copied into 'phone'" in out and "Pareto front of 'phone'" in out
    url = f"sqlite:///{searched / 'r.db'}"
    source = optuna.load_study(study_name="pi", storage=url)
    target = optuna.load_study(study_name="phone", storage=url)
    table = LatencyTable.load(searched / "b.json", space=CellSpace(max_layers=2))
    latency = table.for_space(CellSpace(max_layers=2))
    for old, new in zip(source.trials, target.trials, strict=True):
        assert new.system_attrs[RETARGET_ATTR]["trial"] == old.number
        assert new.values[0] == old.values[0]
        assert new.values[1] == pytest.approx(1e3 * latency(new.params))
    config = target.user_attrs[CONFIG_ATTR]
    assert config["study"] == "phone" and config["latency_table"] == str(searched / "b.json")
    # Running it again copies nothing twice; --trials then trains for the new device.
    assert main(_args(searched, "--to", "phone")) == 0
    assert len(optuna.load_study(study_name="phone", storage=url).trials) == 8
    assert main(_args(searched, "--to", "phone2", "--trials", "2")) == 0
    more = optuna.load_study(study_name="phone2", storage=url)
    complete = more.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 10
    assert sum(RETARGET_ATTR not in t.system_attrs for t in complete) == 2


@pytest.mark.parametrize(
    ("extra", "table", "message"),
    [
        (["--to", "x"], "wide.json", "input shape"),  # a table of another input shape
        (["--to", "pi"], "b.json", "another name"),
        (["--to", "x", "--trials", "-1"], "b.json", "--trials -1"),
        (["--to", "x"], "missing.json", "no such file"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    searched: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    table: str,
    message: str,
) -> None:
    url = f"sqlite:///{searched / 'r.db'}"
    before = {s.study_name for s in optuna.get_all_study_summaries(url)}
    capsys.readouterr()
    assert main(_args(searched, *extra, table=table)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert {s.study_name for s in optuna.get_all_study_summaries(url)} == before


def test_an_unknown_study_or_other_directions_are_refused(
    searched: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{searched / 'r.db'}"
    optuna.create_study(study_name="other", storage=url, directions=["maximize", "minimize"])
    capsys.readouterr()
    assert main(_args(searched, "--to", "other")) == 2
    assert "directions" in capsys.readouterr().err
    assert len(optuna.load_study(study_name="other", storage=url).trials) == 0
    argv = _args(searched, "--to", "y")
    argv[argv.index("pi")] = "nope"
    assert main(argv) == 2
    assert "No study named 'nope'" in capsys.readouterr().err
