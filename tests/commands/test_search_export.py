"""``devnas search`` end to end, then ``export`` read back with torch and onnxruntime."""

from __future__ import annotations

from pathlib import Path
import re
import shutil
import subprocess
import sys

import onnxruntime
import optuna
import pytest
import torch

from optuna_devnas.cli import main
from optuna_devnas.commands._config import CONFIG_ATTR
from optuna_devnas.commands.export import load_trained_model
from optuna_devnas.spaces import Architecture


def devnas(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optuna_devnas.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


SAME = [
    "--storage",
    "sqlite:///search.db",
    "--study",
    "s",
    "--trials",
    "3",
    "--epochs",
    "1",
    "--sampler",
    "random",
    "--objectives",
    "val_error,params",
]


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("search")
    result = devnas("search", *SAME, cwd=folder)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if re.match(r" +\d+/3 ", line)]
    assert [row[0] for row in rows] == ["1/3", "2/3", "3/3"]
    assert "Pareto front of 's'" in result.stdout
    return folder


def test_the_study_is_kept_in_a_file_said_at_the_start_and_the_end(
    searched: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(searched)
    assert main(["search", *SAME]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    where = f"sqlite:///{searched / 'search.db'}"
    assert lines[0].startswith(f"devnas search: study 's' in {where} (3/3 trials done)")
    assert lines[-1] == f"Study 's' is kept in {where}: devnas pareto --storage {where} --study s"


def test_the_artifact_folder_is_stored_as_an_absolute_path(searched: Path) -> None:
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{searched / 'search.db'}")
    assert study.user_attrs[CONFIG_ATTR]["artifacts"] == str(searched / "devnas-artifacts")


def test_the_same_study_through_another_url_is_the_same_search(
    searched: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moved = tmp_path / "moved.db"
    shutil.copy(searched / "search.db", moved)
    # Another file name, an absolute path, another working directory: the same search.
    monkeypatch.chdir(searched)
    assert main(["search", *SAME[2:], "--storage", f"sqlite:///{moved}"]) == 0
    assert "(3/3 trials done)" in capsys.readouterr().out
    assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{moved}").trials) == 3


def test_export_from_another_folder_finds_the_weights(
    searched: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{searched / 'search.db'}"
    number = optuna.load_study(study_name="s", storage=url).best_trials[0].number
    monkeypatch.chdir(tmp_path)
    argv = ["export", "--storage", url, "--study", "s", "--trial", str(number)]
    assert main([*argv, "--output", "out"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "architecture.json",
        "model.pt",
    ]


def test_export_onto_an_existing_file_is_refused(
    searched: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = searched / "taken.txt"
    target.write_text("keep me")
    url = f"sqlite:///{searched / 'search.db'}"
    argv = ["export", "--storage", url, "--study", "s", "--trial", "0", "--output", str(target)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"devnas export: error: Got --output '{target}', which is a file; expected a folder."
    ]
    assert target.read_text() == "keep me"


def test_onnx_export_without_the_onnx_extra_writes_nothing(
    searched: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    url = f"sqlite:///{searched / 'search.db'}"
    out = tmp_path / "onnx-out"
    argv = ["export", "--storage", url, "--study", "s", "--trial", "0", "--format", "onnx"]
    assert main([*argv, "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "devnas export: error: ONNX export needs onnxruntime: pip install 'optuna-devnas[onnx]'."
    ]
    assert not out.exists()


def test_search_again_with_another_configuration_is_refused(searched: Path) -> None:
    result = devnas(
        "search", "--storage", "sqlite:///search.db", "--study", "s", "--epochs", "2", cwd=searched
    )
    assert result.returncode == 2
    assert "exists with another configuration" in result.stderr
    assert "epochs" in result.stderr


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_loads_back_and_predicts_like_the_trained_model(searched: Path, fmt: str) -> None:
    url = f"sqlite:///{searched / 'search.db'}"
    study = optuna.load_study(study_name="s", storage=url)
    number = study.best_trials[0].number
    out = searched / f"out-{fmt}"
    result = devnas(
        "export",
        "--storage",
        url,
        "--study",
        "s",
        "--trial",
        str(number),
        "--format",
        fmt,
        "--output",
        str(out),
        cwd=searched,
    )
    assert result.returncode == 0, result.stderr
    arch = Architecture.from_json((out / "architecture.json").read_text())
    trained, trained_arch, data = load_trained_model(
        url, "s", number, artifacts=str(searched / "devnas-artifacts")
    )
    assert arch == trained_arch
    batch = data.val_x[:8]
    with torch.no_grad():
        expected = trained(batch)
    if fmt == "torchscript":
        loaded = torch.jit.load(str(out / "model.pt"))
        got = torch.cat([loaded(batch[i : i + 1]) for i in range(len(batch))])
    else:
        session = onnxruntime.InferenceSession(str(out / "model.onnx"))
        name = session.get_inputs()[0].name
        got = torch.cat(
            [torch.from_numpy(session.run(None, {name: x[None].numpy()})[0]) for x in batch]
        )
    assert torch.allclose(got, expected, atol=1e-4)
    # The exported model is the trained one, not a fresh network.
    assert (got.argmax(1) == data.val_y[:8]).float().mean() > 0.3


def test_export_of_a_missing_trial(searched: Path) -> None:
    url = f"sqlite:///{searched / 'search.db'}"
    result = devnas(
        "export", "--storage", url, "--study", "s", "--trial", "99", "--output", "x", cwd=searched
    )
    assert result.returncode == 2
    assert "has no trial 99" in result.stderr
