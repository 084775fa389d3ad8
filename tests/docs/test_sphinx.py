"""The Sphinx API reference builds without warnings and documents every public name."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
import re

import pytest

import optuna_devnas

DOCS = Path(__file__).parents[2] / "docs"
MODULES = ["spaces", "data", "objectives", "samplers", "tracking", "instanas"]
# Sphinx 9's napoleon and myst-parser still use interfaces that Sphinx 11 removes.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The mapping interface for autodoc options"),
    pytest.mark.filterwarnings("ignore:.*is deprecated. Check CHANGES for Sphinx API"),
]


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sphinx.cmd.build import build_main

    out = tmp_path_factory.mktemp("html")
    assert build_main(["-W", "--keep-going", "-E", "-q", "-b", "html", str(DOCS), str(out)]) == 0
    return out


def _anchors(page: Path) -> set[str]:
    return set(re.findall(r'id="(optuna_devnas\.[\w.]+)"', page.read_text()))


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_every_public_name_of_a_module_is_documented(html: Path, name: str) -> None:
    module = importlib.import_module(f"optuna_devnas.{name}")
    anchors = _anchors(html / "api" / f"{name}.html")
    assert [n for n in module.__all__ if f"optuna_devnas.{name}.{n}" not in anchors] == []


@pytest.mark.slow
def test_every_top_level_name_is_documented_somewhere(html: Path) -> None:
    anchors = set().union(*(_anchors(page) for page in (html / "api").glob("*.html")))
    names = {anchor.rsplit(".", 1)[1] for anchor in anchors}
    assert [n for n in optuna_devnas.__all__ if n not in names | {"__version__"}] == []


@pytest.mark.slow
def test_guides_are_pages(html: Path) -> None:
    for guide in DOCS.glob("*.md"):
        assert (html / f"{guide.stem}.html").exists(), guide.name
    assert (html / "_images" / "dashboard-study.png").exists()


def test_constants_written_into_the_reference_are_the_real_values() -> None:
    # The reference states constants with ``py:data`` (autodoc would show the docstring of
    # ``str`` or ``tuple`` for a re-exported constant), so their values are checked here.
    found = 0
    for page in (DOCS / "api" / f"{name}.rst" for name in MODULES):
        pattern = r"py:data:: (\S+)\n   :type: .*\n   :value: (.*)\n"
        module = importlib.import_module(f"optuna_devnas.{page.stem}")  # automodule's module
        for name, value in re.findall(pattern, page.read_text()):
            assert getattr(module, name) == ast.literal_eval(value), name
            found += 1
    assert found == 14
