"""The ablation benchmark: settings applied around one run only, and a tiny real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import _nb201_samplers, ablation
from benchmarks._nb201_table import DEFAULT_TABLE
from optuna_devnas.samplers import _generic


def test_applied_sets_and_restores_even_on_error() -> None:
    before = _generic.LOCAL_EVERY
    with ablation.applied([(_generic.__name__, "LOCAL_EVERY", 7)]):
        assert _generic.LOCAL_EVERY == 7
    assert _generic.LOCAL_EVERY == before

    settings = [
        (_generic.__name__, "LOCAL_EVERY", 7),
        (_nb201_samplers.__name__, "DPP_OPTIONS", {"n_startup_trials": 3}),
    ]
    with pytest.raises(RuntimeError), ablation.applied(settings):
        assert _nb201_samplers.DPP_OPTIONS == {"n_startup_trials": 3}
        raise RuntimeError
    assert _generic.LOCAL_EVERY == before and _nb201_samplers.DPP_OPTIONS == {}


def test_applied_refuses_a_missing_attribute_and_restores_the_rest() -> None:
    before = _generic.LOCAL_EVERY
    settings = [(_generic.__name__, "LOCAL_EVERY", 7), (_generic.__name__, "NO_SUCH_NAME", 1)]
    with pytest.raises(AttributeError, match="NO_SUCH_NAME"), ablation.applied(settings):
        pass
    assert _generic.LOCAL_EVERY == before


def test_every_ablation_names_existing_attributes() -> None:
    # A renamed constant must fail here, not silently measure the default.
    for name, item in ablation.ABLATIONS.items():
        with ablation.applied(item.settings):
            pass
        assert item.what, name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--problem", "cifar10:raspi4:error,latency", "--ablations", "nope"], "--ablations"),
        (["--problem", "cifar10:raspi4"], "--problem"),
        (["--problem", "cifar10:raspi4:latency,error"], "--problem"),
        (["--problem", "cifar10:raspi4:error,latency", "--budgets", "0,5"], "--budgets"),
        (["--problem", "cifar10:raspi4:error,latency", "--results", "r.jsonl.gz"], "--results"),
    ],
)
def test_bad_arguments_exit_2_with_the_argument_named(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as error:
        ablation.parse_args(argv)
    assert error.value.code == 2
    assert message in capsys.readouterr().err


def test_default_is_always_planned() -> None:
    args = ablation.parse_args(
        ["--problem", "cifar10:raspi4:error,latency", "--ablations", "startup-5", "--seeds", "2"]
    )
    tasks = ablation.plan(args)
    assert [(t.ablation, t.spec.seed) for t in tasks] == [
        ("default", 0),
        ("startup-5", 0),
        ("default", 1),
        ("startup-5", 1),
    ]


@pytest.mark.skipif(
    not Path(DEFAULT_TABLE).is_file(), reason="the NAS-Bench-201 table is not on this machine"
)
def test_tiny_run_applies_each_setting_to_its_own_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results, output = tmp_path / "a.jsonl", tmp_path / "a.md"
    argv = ["--problem", "cifar10:raspi4:error,latency", "--ablations", "startup-5"]
    argv += ["--seeds", "1", "--budgets", "4,12", "--results", str(results)]
    argv += ["--output", str(output)]

    assert ablation.main(argv) == 0

    records = {r["ablation"]: r for r in map(json.loads, results.read_text().splitlines())}
    assert sorted(records) == ["default", "startup-5"]
    default, short = records["default"]["values"], records["startup-5"]["values"]
    # Same seed, same spread-out start; the shorter start hands over to the model after five.
    assert default[:5] == short[:5] and default != short
    assert _nb201_samplers.DPP_OPTIONS == {}  # restored after the run in this process
    page = output.read_text()
    assert "| startup-5 | 5 initial spread-out trials" in page
    assert "| default | 1 |" in page and "| 1.00 | 1.00 |" in page
    assert "startup-5: worse than the default on" in page
    assert "2 to run with 1 job(s)" in capsys.readouterr().out

    assert ablation.main(argv) == 0  # everything is found in --results
    assert "0 to run" in capsys.readouterr().out
    assert len(results.read_text().splitlines()) == 2
