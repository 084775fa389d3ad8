"""The few reads and writes of an Optuna study's storage that Optuna 5 has no public API for.

Optuna 5 removed ``Trial.set_system_attr`` and ``Study.system_attrs``, and a study does not
expose its storage or its storage ids; Optuna's own samplers write system attributes through
``study._storage`` and ``trial._trial_id``. Every such access of the package (but the
sampler's, which does the same) goes through these helpers, so an Optuna release that adds a
public API changes one module. Use Optuna's public API (``study.get_trials``, ``trial.number``,
``trial.system_attrs``) wherever it does the job.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage ``study`` reads and writes."""
    return study._storage


def study_id_of(study: optuna.Study) -> int:
    """``study``'s id in its storage (names may repeat across storages; ids within one do not)."""
    return study._study_id


def trial_id_of(trial: optuna.Trial | FrozenTrial) -> int:
    """``trial``'s id in its storage (``trial.number`` counts within the study only)."""
    return trial._trial_id


def study_system_attrs(study: optuna.Study) -> dict[str, Any]:
    """``study``'s system attributes, as stored now."""
    return storage_of(study).get_study_system_attrs(study_id_of(study))


def trial_system_attrs(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> dict[str, Any]:
    """``trial``'s system attributes as stored now (a ``FrozenTrial``'s may be older)."""
    return storage_of(study).get_trial_system_attrs(trial_id_of(trial))


def set_trial_system_attr(
    study: optuna.Study, trial: optuna.Trial | FrozenTrial, key: str, value: Any
) -> None:
    """Store system attribute ``key`` of ``trial`` (of ``study``), as Optuna's samplers do."""
    storage_of(study).set_trial_system_attr(trial_id_of(trial), key, value)


def stored_trial(study: optuna.Study, trial_id: int) -> FrozenTrial:
    """The trial of ``study`` with storage id ``trial_id``, as stored now."""
    return storage_of(study).get_trial(trial_id)
