"""Objectives of a device-aware search: accuracy, latency, size, FLOPs and memory.

Every objective has a ``name``, a ``direction`` and a call on an ``nn.Module`` or an
``Architecture``; ``objective.for_space(space)`` turns it into a cached function of a trial's
parameters, the form ``DPPSampler``'s ``cheap_objectives`` take.
"""

from optuna_devnas.objectives._base import InferenceObjective, Objective, ParamsObjective
from optuna_devnas.objectives._counting import FLOPs, ParamCount
from optuna_devnas.objectives._latency import Latency
from optuna_devnas.objectives._latency_table import LatencyTable, LatencyTableMismatchError
from optuna_devnas.objectives._layer_shapes import LayerShape, layer_shapes, space_layer_shapes
from optuna_devnas.objectives._memory import PeakMemory
from optuna_devnas.objectives._profiling import describe_device
from optuna_devnas.objectives._timing import interleaved_medians, measure_latency, resolve_clock
from optuna_devnas.objectives._training import (
    ValidationAccuracy,
    ValidationError,
    evaluate_error,
    train_classifier,
)

__all__ = [
    "FLOPs",
    "InferenceObjective",
    "LatencyTable",
    "LatencyTableMismatchError",
    "LayerShape",
    "Latency",
    "Objective",
    "ParamCount",
    "ParamsObjective",
    "PeakMemory",
    "ValidationAccuracy",
    "ValidationError",
    "describe_device",
    "evaluate_error",
    "interleaved_medians",
    "layer_shapes",
    "measure_latency",
    "resolve_clock",
    "space_layer_shapes",
    "train_classifier",
]
