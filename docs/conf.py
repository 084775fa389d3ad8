"""Sphinx configuration: the API reference (autodoc, napoleon) and the Markdown guides (MyST).

Build with ``make docs`` (warnings are errors). Cross-references to Optuna, BoTorch, PyTorch and
MLflow (intersphinx) need their inventories from the network, which CI does not have: they are
fetched only with ``DEVNAS_DOCS_INTERSPHINX=1``, and otherwise those names render as plain text.
"""

from __future__ import annotations

import os
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna_devnas  # noqa: E402

project = "optuna-devnas"
author = "The optuna-devnas authors"
copyright = "2026, The optuna-devnas authors"
release = version = optuna_devnas.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

# Every name in a module's ``__all__``, constants and undocumented ones included.
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Dataclass fields are members already: list "Attributes:" as fields, not second entries.
napoleon_use_ivar = True

# Anchors for the guides' "file.md#section" links.
myst_heading_anchors = 3

intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
if os.environ.get("DEVNAS_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "optuna": ("https://optuna.readthedocs.io/en/stable", None),
        "botorch": ("https://botorch.readthedocs.io/en/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
        "mlflow": ("https://mlflow.org/docs/latest/api_reference", None),
    }

html_theme = "alabaster"
html_theme_options = {"page_width": "1200px", "sidebar_width": "260px"}
html_title = f"optuna-devnas {release}"
