"""Experiment tracking: per-step metrics now, the MLflow tracker on top of them."""

from optuna_devnas.tracking._steps import add_step_listener, log_step, remove_step_listener

__all__ = ["add_step_listener", "log_step", "remove_step_listener"]
