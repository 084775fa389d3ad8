from __future__ import annotations

import ast
from pathlib import Path
import subprocess
import sys

import optuna_devnas

INIT = Path(optuna_devnas.__file__)


def test_all_lists_every_lazy_export_and_type_checkers_see_them() -> None:
    exports = optuna_devnas._EXPORTS
    assert sorted(optuna_devnas.__all__) == sorted([*exports, "__version__"])
    tree = ast.parse(INIT.read_text())
    checked = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    seen = {
        alias.name: node.module
        for node in checked.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen == exports  # the TYPE_CHECKING imports match the lazy table, name by name
    for name in exports:
        assert getattr(optuna_devnas, name).__name__ == name


def test_import_stays_light() -> None:
    heavy = "{'torch', 'mlflow', 'botorch'}"
    code = f"import sys, optuna_devnas; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
