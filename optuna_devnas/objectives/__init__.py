"""Objectives of a device-aware search: accuracy, latency, size, FLOPs and memory."""

from optuna_devnas.objectives._base import Objective
from optuna_devnas.objectives._timing import measure_latency
from optuna_devnas.objectives._training import (
    ValidationAccuracy,
    ValidationError,
    evaluate_error,
    train_classifier,
)

__all__ = [
    "Objective",
    "ValidationAccuracy",
    "ValidationError",
    "evaluate_error",
    "measure_latency",
    "train_classifier",
]
