"""``SearchConfig``: contradictory values are refused; where a study is stored is not compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optuna_devnas.cli import main
from optuna_devnas.commands._config import HELP, LOCATION_KEYS, ConfigError, SearchConfig


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_retry": -1}, "Got max_retry=-1, but expected >= 0."),
        ({"max_failures": 0}, "Got max_failures=0, but expected >= 1."),
        ({"k": 0}, "Got k=0, but expected >= 1."),
        ({"lr": 0.0}, "Got lr=0.0, but expected a positive number."),
        ({"study": ""}, "Got study='', but expected a name."),
        ({"study": "  "}, "Got study='  ', but expected a name."),
        ({"storage": ""}, "Got storage='', but expected a name."),
        ({"objectives": ["params", "params"]}, "params would be the same objective twice"),
        (
            {"objectives": ["val_error", "val_accuracy", "params"]},
            "val_accuracy and val_error would be the same objective twice",
        ),
        (
            {"objectives": ["val_error", "params"], "latency_table": "t.json"},
            "it predicts the latency_ms objective, which this search does not have",
        ),
    ],
)
def test_silently_accepted_values_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SearchConfig(**values)  # type: ignore[arg-type]
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-retry", "-1"], "Got max_retry=-1, but expected >= 0."),
        (["--objectives", "params,params"], "params would be the same objective twice"),
        (["--objectives", "val_error,val_accuracy"], "would be the same objective twice"),
        (["--study", ""], "Got study='', but expected a name."),
        (["--k", "0"], "Got k=0, but expected >= 1."),
    ],
)
def test_the_command_line_refuses_them_in_one_line_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    storage = tmp_path / "db.sqlite3"
    assert main(["search", "--storage", f"sqlite:///{storage}", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("devnas search: error:"), err
    assert message in err[0]
    assert not storage.exists()


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".cfg", ""])
def test_configuration_files_other_than_json_or_toml_are_refused(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"search{suffix}"
    path.write_text(json.dumps({"trials": 3}))  # valid JSON: it used to be parsed as JSON
    with pytest.raises(ConfigError, match=r"expected a file ending in \.json or \.toml"):
        SearchConfig.from_file(path)


def test_json_and_toml_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"trials": 3, "k": 4}))
    (tmp_path / "a.toml").write_text("trials = 3\nk = 4\nobjectives = ['val_error', 'flops']\n")
    assert SearchConfig.from_file(tmp_path / "a.json").k == 4
    toml = SearchConfig.from_file(tmp_path / "a.toml")
    assert (toml.trials, toml.k, toml.objectives) == (3, 4, ["val_error", "flops"])


def test_peak_memory_is_an_objective_and_new_keys_have_defaults() -> None:
    config = SearchConfig(objectives=["val_error", "peak_memory"])
    assert config.metric_names == ["val_error", "peak_memory"]
    assert (config.k, config.max_failures, config.latency_table, config.artifacts) == (
        8,
        5,
        None,
        None,
    )


def test_the_search_is_compared_without_where_it_is_stored() -> None:
    assert LOCATION_KEYS == ("storage",)
    here = SearchConfig(storage="sqlite:///a.db")
    there = SearchConfig(storage="postgresql://postgres@localhost:5432/test")
    assert here.to_dict() != there.to_dict()
    assert here.search_dict() == there.search_dict()
    assert "storage" not in here.search_dict()
    assert SearchConfig(epochs=2).search_dict() != here.search_dict()


def test_every_key_has_a_meaning_for_the_help() -> None:
    assert set(HELP) == set(SearchConfig().to_dict())
