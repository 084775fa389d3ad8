"""``devnas search`` end to end, then ``export`` read back with torch and onnxruntime."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import onnxruntime
import optuna
import pytest
import torch

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


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("search")
    result = devnas(
        "search",
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
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("] trial ") == 3
    assert "Pareto front of 's'" in result.stdout
    return folder


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
