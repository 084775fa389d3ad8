"""OptunaHub entry point of ``DPPSampler``: the installed ``optuna-devnas`` package's class.

OptunaHub loads this folder as a module; it re-exports the sampler from the installed package
(``pip install optuna-devnas``) instead of carrying a copy, so the registry and PyPI never
disagree about what ``DPPSampler`` does.
"""

from __future__ import annotations

from optuna_devnas.samplers import DPPSampler

__all__ = ["DPPSampler"]
