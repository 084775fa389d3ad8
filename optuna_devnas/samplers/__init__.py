"""Samplers: ``DPPSampler``, DPP-Net's progressive device-aware Pareto search for Optuna."""

from optuna_devnas.samplers._sampler import (
    AHEAD_KEY,
    ARCHITECTURE_KEY,
    CLAIM_KEY,
    PARAMS_KEY,
    PREDICTION_KEY,
    STAGE_KEY,
    DPPSampler,
)

__all__ = [
    "AHEAD_KEY",
    "ARCHITECTURE_KEY",
    "CLAIM_KEY",
    "DPPSampler",
    "PARAMS_KEY",
    "PREDICTION_KEY",
    "STAGE_KEY",
]
