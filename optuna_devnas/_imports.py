"""Modules loaded on first attribute access, as Optuna's ``optuna/_gp`` loads scipy and torch.

Use :class:`LazyImport` where a module of the package needs a heavy dependency (botorch) only
inside some of its functions, so that importing the module (``devnas --help``, the sampler's
keys) does not load it::

    if TYPE_CHECKING:
        import botorch
    else:
        botorch = LazyImport("botorch")
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyImport(types.ModuleType):
    """Stands for module ``name`` and imports it at the first attribute read.

    Args:
        name:
            The module's full name, e.g. ``"botorch"``.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._name = name

    def __getattr__(self, item: str) -> Any:
        # Every read goes to the module itself (a dictionary look-up once it is imported), not
        # to a copy of its attributes, so that a later change to it (a test's patch) shows.
        return getattr(importlib.import_module(self._name), item)
