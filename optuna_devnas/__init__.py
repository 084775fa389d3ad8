"""optuna-devnas: device-aware neural architecture search for Optuna.

``import optuna_devnas`` stays light: the public names below are imported on first use, so
torch, botorch and mlflow load only when the part that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # What mypy and IDEs see; the names load lazily at run time.
    from optuna_devnas._errors import (
        DataNotFoundError,
        DevnasError,
        InputShapeError,
        InvalidArchitectureError,
    )
    from optuna_devnas._retarget import retarget
    from optuna_devnas.data import TensorData, load_cifar, load_digits, load_fashion_mnist
    from optuna_devnas.instanas import (
        InstaNAS,
        InstaNASConfig,
        InstaNASObjective,
        OptionLatencyTable,
    )
    from optuna_devnas.objectives import (
        FLOPs,
        Latency,
        LatencyTable,
        LatencyTableMismatchError,
        ParamCount,
        PeakMemory,
        ValidationAccuracy,
        ValidationError,
    )
    from optuna_devnas.samplers import DPPSampler
    from optuna_devnas.spaces import Architecture, CellSpace
    from optuna_devnas.tracking import (
        MLflowTracker,
        SyncResult,
        TrackingWarning,
        log_step,
        sync_study,
    )


# Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "Architecture": "optuna_devnas.spaces",
    "CellSpace": "optuna_devnas.spaces",
    "DPPSampler": "optuna_devnas.samplers",
    "DataNotFoundError": "optuna_devnas._errors",
    "DevnasError": "optuna_devnas._errors",
    "InputShapeError": "optuna_devnas._errors",
    "InstaNAS": "optuna_devnas.instanas",
    "InstaNASConfig": "optuna_devnas.instanas",
    "InstaNASObjective": "optuna_devnas.instanas",
    "InvalidArchitectureError": "optuna_devnas._errors",
    "OptionLatencyTable": "optuna_devnas.instanas",
    "MLflowTracker": "optuna_devnas.tracking",
    "SyncResult": "optuna_devnas.tracking",
    "TrackingWarning": "optuna_devnas.tracking",
    "log_step": "optuna_devnas.tracking",
    "sync_study": "optuna_devnas.tracking",
    "TensorData": "optuna_devnas.data",
    "ValidationAccuracy": "optuna_devnas.objectives",
    "ValidationError": "optuna_devnas.objectives",
    "FLOPs": "optuna_devnas.objectives",
    "Latency": "optuna_devnas.objectives",
    "LatencyTable": "optuna_devnas.objectives",
    "LatencyTableMismatchError": "optuna_devnas.objectives",
    "ParamCount": "optuna_devnas.objectives",
    "PeakMemory": "optuna_devnas.objectives",
    "load_cifar": "optuna_devnas.data",
    "load_digits": "optuna_devnas.data",
    "load_fashion_mnist": "optuna_devnas.data",
    "retarget": "optuna_devnas._retarget",
}

__all__ = [
    "Architecture",
    "CellSpace",
    "DPPSampler",
    "DataNotFoundError",
    "DevnasError",
    "FLOPs",
    "InputShapeError",
    "InstaNAS",
    "InstaNASConfig",
    "InstaNASObjective",
    "InvalidArchitectureError",
    "Latency",
    "LatencyTable",
    "LatencyTableMismatchError",
    "MLflowTracker",
    "OptionLatencyTable",
    "ParamCount",
    "PeakMemory",
    "SyncResult",
    "TensorData",
    "TrackingWarning",
    "ValidationAccuracy",
    "ValidationError",
    "__version__",
    "load_cifar",
    "load_digits",
    "load_fashion_mnist",
    "log_step",
    "retarget",
    "sync_study",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'optuna_devnas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
