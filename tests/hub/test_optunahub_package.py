"""The OptunaHub package ``package/samplers/dpp_sampler``: loads with optunahub and searches."""

from __future__ import annotations

import importlib.util
from pathlib import Path
import re
from types import ModuleType

import optuna
import optunahub
import pytest

from optuna_devnas.samplers import STAGE_KEY, DPPSampler
from tests.samplers._objectives import SPACE, cost, objective

ROOT = Path(__file__).parents[2]
REGISTRY_ROOT = ROOT / "package"
PACKAGE = "samplers/dpp_sampler"
FOLDER = REGISTRY_ROOT / PACKAGE


def _load() -> ModuleType:
    return optunahub.load_local_module(package=PACKAGE, registry_root=str(REGISTRY_ROOT))


def test_package_is_the_installed_sampler_not_a_copy() -> None:
    module = _load()
    assert module.DPPSampler is DPPSampler
    assert module.__all__ == ["DPPSampler"]


def test_loaded_sampler_runs_a_short_progressive_study() -> None:
    sampler = _load().DPPSampler(space=SPACE, k=2, cheap_objectives={1: cost}, seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=8)
    assert [t.system_attrs[STAGE_KEY] for t in study.trials] == [1] * 6 + [2] * 2
    cells = [SPACE.from_params(t.params).canonical() for t in study.trials]
    assert len(set(cells)) == len(cells)
    assert all(len(cell.layers) == 2 for cell in cells[6:])


def _front_matter(readme: str) -> dict[str, str]:
    match = re.match(r"---\n(.*?)\n---\n", readme, flags=re.DOTALL)
    assert match, "README.md must open with OptunaHub's front matter"
    pairs = (line.split(":", 1) for line in match.group(1).splitlines())
    return {key.strip(): value.strip() for key, value in pairs}


def test_readme_has_the_front_matter_and_sections_optunahub_requires() -> None:
    readme = (FOLDER / "README.md").read_text()
    meta = _front_matter(readme)
    assert set(meta) == {"author", "title", "description", "tags", "optuna_versions", "license"}
    tags = [tag.strip() for tag in meta["tags"].strip("[]").split(",")]
    assert "sampler" in tags  # OptunaHub requires it of every package under samplers/.
    versions = [v.strip() for v in meta["optuna_versions"].strip("[]").split(",")]
    # Versions the sampler was checked with; the project requires Optuna 5.
    assert versions and all(re.fullmatch(r"5\.\d+\.\d+", v) for v in versions), versions
    headings = re.findall(r"^## (.+)$", readme, flags=re.MULTILINE)
    assert headings[:4] == ["Abstract", "Class or Function Names", "Installation", "Example"]
    assert 'load_module(package="samplers/dpp_sampler")' in readme


def test_license_is_the_projects_license() -> None:
    # tomllib is Python 3.11+, and this project supports 3.10: read the one line.
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text().splitlines()
    text = (FOLDER / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "<COPYRIGHT HOLDER>" not in text
    assert (FOLDER / "requirements.txt").read_text().split() == ["optuna-devnas"]


@pytest.mark.slow
def test_example_runs_from_a_local_registry(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("dpp_sampler_hub_example", FOLDER / "example.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    study = module.main(["--trials", "3", "--local"])
    assert len(study.trials) == 3 and all(t.values[0] < 0.9 for t in study.trials)
    assert "Pareto front:" in capsys.readouterr().out
