"""``retarget``: a finished search for one device, re-used for another without retraining.

A network's accuracy does not depend on the device it runs on; its latency does, and a latency
table of the new device gives it from the architecture alone. :func:`retarget` copies the
finished trials of a study into another study with the device objectives recomputed from each
trial's parameters, so the new device's Pareto front is known at once, and a ``DPPSampler`` on
the target study spends its next trials on what that front lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import math
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_devnas._optuna_storage import storage_of

RETARGET_ATTR = "devnas:retargeted_from"
"""Trial system attribute of a copy: ``{"study": source study name, "trial": its number}``."""

_COPIED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
_CONSTRAINTS_PREFIX = "constraints:"  # Optuna 5 keeps ``trial.set_constraint`` values so.
_NOT_COPIED = ("DPPSampler:claim", "fixed_params")  # how workers shared the source's work

ParamsFunction = Callable[[dict[str, Any]], float]


def retarget(
    source: optuna.Study,
    target: optuna.Study,
    *,
    objectives: Mapping[int, ParamsFunction],
    constraints: Callable[[dict[str, Any]], Mapping[str, float]] | None = None,
) -> int:
    """Copy ``source``'s finished trials into ``target``, recomputing some objectives.

    Every complete, pruned and failed trial of ``source`` becomes a trial of ``target`` in the
    same state, with the same parameters, distributions, user attributes and intermediate
    values. Complete trials keep the values of the objectives not named in ``objectives``
    (accuracy, which the device does not change) and get the others recomputed from their
    parameters. Failed and pruned trials are copied as such, so that a sampler does not try
    them again. Each copy records where it came from in the system attribute
    ``"devnas:retargeted_from"``; a trial copied before is not copied again, so calling this
    twice copies nothing the second time.

    Example:

        .. code-block:: python

            # A finished (error, latency) search on a Raspberry Pi, copied to a phone's table.
            pi_study = optuna.load_study(study_name="pi", storage="sqlite:///nas.db")
            pixel = LatencyTable.load("pixel.json", space=space, input_shape=(1, 1, 8, 8))
            phone = optuna.create_study(directions=["minimize", "minimize"])
            retarget(pi_study, phone, objectives={1: pixel.for_space(space)})
            print(phone.best_trials)  # the phone's Pareto front, without training

    Args:
        source:
            The finished search.
        target:
            The study to fill: the same number of objectives and the same directions.
        objectives:
            ``{objective index: fn(params) -> float}`` for the objectives to recompute, e.g.
            ``LatencyTable.for_space(space)`` of the new device.
        constraints:
            ``fn(params) -> {name: value}`` recomputing every constraint of a trial (feasible
            when all are <= 0); by default the source's constraint values are copied.

    Returns:
        The number of trials copied.

    Raises:
        ValueError: If the studies are the same, their directions differ, ``objectives`` names
            an index the studies do not have or holds something that is not callable, or a
            function returns a value that is not a finite number.
    """
    _check(source, target, objectives, constraints)
    done = {
        (attr.get("study"), attr.get("trial"))
        for trial in target.get_trials(deepcopy=False)
        if isinstance(attr := trial.system_attrs.get(RETARGET_ATTR), dict)
    }
    copies = [
        _copy(trial, source.study_name, objectives, constraints)
        for trial in source.get_trials(deepcopy=False, states=_COPIED_STATES)
        if (source.study_name, trial.number) not in done
    ]
    target.add_trials(copies)
    return len(copies)


def _check(
    source: optuna.Study,
    target: optuna.Study,
    objectives: Mapping[int, ParamsFunction],
    constraints: Callable[[dict[str, Any]], Mapping[str, float]] | None,
) -> None:
    if source is target or (
        source.study_name == target.study_name and storage_of(source) is storage_of(target)
    ):
        raise ValueError(
            f"Got the same study {source.study_name!r} as source and target, but expected "
            "two studies."
        )
    if source.directions != target.directions:
        raise ValueError(
            f"Got a target study with directions {[d.name for d in target.directions]}, but "
            f"the source's are {[d.name for d in source.directions]}."
        )
    n = len(source.directions)
    for index, fn in objectives.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise ValueError(
                f"Got objectives key {index!r}, but expected an objective index in 0..{n - 1}."
            )
        if not callable(fn):
            raise ValueError(
                f"Got objectives[{index}]={fn!r}, but expected a function of the parameters."
            )
    if constraints is not None and not callable(constraints):
        raise ValueError(f"Got constraints={constraints!r}, but expected a function or None.")


def _copy(
    trial: FrozenTrial,
    study_name: str,
    objectives: Mapping[int, ParamsFunction],
    constraints: Callable[[dict[str, Any]], Mapping[str, float]] | None,
) -> FrozenTrial:
    system_attrs = {
        key: value
        for key, value in trial.system_attrs.items()
        if key not in _NOT_COPIED
        and not (constraints is not None and key.startswith(_CONSTRAINTS_PREFIX))
    }
    system_attrs[RETARGET_ATTR] = {"study": study_name, "trial": trial.number}
    values = None
    if trial.state == TrialState.COMPLETE:
        values = list(trial.values)
        for index, fn in objectives.items():
            values[index] = _finite(fn(dict(trial.params)), f"objectives[{index}]", trial)
    recomputed = None
    if constraints is not None:
        recomputed = {
            str(name): _finite(value, f"constraint {name!r}", trial)
            for name, value in constraints(dict(trial.params)).items()
        }
    return optuna.trial.create_trial(
        state=trial.state,
        values=values,
        params=trial.params,
        distributions=trial.distributions,
        user_attrs=trial.user_attrs,
        system_attrs=system_attrs,
        intermediate_values=trial.intermediate_values,
        constraints=recomputed,
    )


def _finite(value: Any, what: str, trial: FrozenTrial) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(
            f"Got {what}={value!r} for trial {trial.number} (params {trial.params}), but "
            "expected a finite number."
        )
    return number
