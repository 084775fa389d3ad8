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


def test_the_sampler_and_the_commands_load_botorch_only_when_they_rank() -> None:
    # BoTorch adds about a second: `devnas --help` and the sampler's keys must not pay it.
    modules = "optuna_devnas.samplers, optuna_devnas.commands._job, optuna_devnas.tracking"
    code = f"import sys, {modules}; print(sorted({{'botorch', 'gpytorch'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_lazy_module_reads_through_to_the_module() -> None:
    import json

    from optuna_devnas._imports import LazyImport

    lazy = LazyImport("json")
    assert lazy.dumps([1]) == "[1]"
    json.__dict__["_devnas_probe"] = 1  # a later change to the module shows through
    try:
        assert lazy._devnas_probe == 1
    finally:
        del json.__dict__["_devnas_probe"]
