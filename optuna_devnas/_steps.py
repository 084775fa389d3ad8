"""Per-step metrics (training curves) from inside an objective, without knowing the tracker.

Training code calls :func:`log_step` once per epoch or step; whatever listens (the MLflow
tracker, a test) receives ``(trial, key, value, step)``. With no listener it costs a list look-up,
so objectives call it unconditionally. It lives at the package's core, not in ``tracking``, so
that objectives and InstaNAS report curves without depending on the tracking package;
``optuna_devnas.tracking`` re-exports it.
"""

from __future__ import annotations

from collections.abc import Callable
import threading

import optuna

StepListener = Callable[[optuna.Trial, str, float, int], None]

_listeners: list[StepListener] = []
_lock = threading.Lock()


def add_step_listener(listener: StepListener) -> None:
    """Start sending every :func:`log_step` call to ``listener``."""
    with _lock:
        _listeners.append(listener)


def remove_step_listener(listener: StepListener) -> None:
    """Stop sending to ``listener`` (no error if it was not registered)."""
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def log_step(trial: optuna.Trial | None, key: str, value: float, step: int) -> None:
    """Record ``value`` of metric ``key`` at ``step`` of ``trial`` (no-op without a trial)."""
    if trial is None:
        return
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(trial, key, float(value), int(step))
