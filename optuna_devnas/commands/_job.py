"""What a ``devnas search`` or ``devnas worker`` process runs: data, sampler, objective, loop.

Both commands build the same job from a :class:`SearchConfig` (``worker`` reads it back from
the study), so every process evaluates the same objective. :meth:`SearchJob.optimize` runs
trials until the study's budget is spent (``_budget``), all workers together, and waits for the
trials of other workers so that those of dead workers are failed and run again
(``_recovery``). Trained weights go to Optuna's file-system artifact store, under the absolute
folder stored in the study, so ``devnas export`` can rebuild the exact network from anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import importlib.util
import io
import math
import os
from pathlib import Path
import tempfile
import time
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
import torch

from optuna_devnas._optuna_storage import stored_trial
from optuna_devnas.commands._attrs import FAILURE_ATTR, WEIGHTS_ATTR
from optuna_devnas.commands._budget import BudgetSpent, TrialBudget
from optuna_devnas.commands._config import CONFIG_ATTR, ConfigError, SearchConfig
from optuna_devnas.commands._failures import (
    FailureLimit,
    check_not_all_failed,
    recording_failures,
)
from optuna_devnas.commands._job_sampler import JobSampler
from optuna_devnas.commands._progress import Progress
from optuna_devnas.commands._recovery import fail_orphans, requeue_interrupted
from optuna_devnas.commands._storage import open_storage
from optuna_devnas.data import TensorData, load_data
from optuna_devnas.spaces import CellSpace

__all__ = ["WEIGHTS_ATTR", "SearchJob", "check_values"]

DEFAULT_ARTIFACTS = "devnas-artifacts"
"""Folder of trained weights, in the folder where a study is created, unless configured."""

DIRECTIONS = {
    "val_error": "minimize",
    "val_accuracy": "maximize",
    "latency_ms": "minimize",
    "params": "minimize",
    "flops": "minimize",
    "peak_memory": "minimize",
}


def make_space(config: SearchConfig) -> CellSpace:
    return CellSpace(
        max_layers=config.max_layers,
        depths=config.depths,
        growth_rates=config.growth_rates,
        stem_channels=config.stem_channels,
    )


def directions(config: SearchConfig) -> list[str]:
    if config.objective is not None:
        assert config.directions is not None
        return list(config.directions)
    return [DIRECTIONS[name] for name in config.objectives]


class CheapObjectives:
    """Latency (ms), parameters, FLOPs and peak memory of an architecture, computed once each.

    The same cached numbers serve the objective (what a trial returns) and ``DPPSampler``'s
    cheap objectives (what it computes for candidates), so both always agree. With
    ``latency_table``, latency is predicted from the table instead of measured here.
    """

    def __init__(self, config: SearchConfig, space: CellSpace, data: TensorData) -> None:
        self.space = space
        self._scale: dict[str, float] = {"latency_ms": 1e3}  # latency objectives give seconds
        self.functions = {
            name: _cheap_objective(name, config, space, data).for_space(space)
            for name in config.objectives
            if name in DIRECTIONS and name not in ("val_error", "val_accuracy")
        }

    def value(self, name: str, params: dict[str, Any]) -> float:
        return self._scale.get(name, 1.0) * self.functions[name](params)

    def function(self, name: str) -> Callable[[dict[str, Any]], float]:
        return lambda params: self.value(name, params)


def _cheap_objective(name: str, config: SearchConfig, space: CellSpace, data: TensorData) -> Any:
    from optuna_devnas import objectives

    num_classes, shape = data.num_classes, (1, *data.input_shape)
    if name == "latency_ms" and config.latency_table is not None:
        return objectives.LatencyTable.load(config.latency_table, space=space, input_shape=shape)
    if name == "latency_ms":
        return objectives.Latency(
            device=config.device,
            threads=config.latency_threads,
            num_classes=num_classes,
            input_shape=shape,
        )
    if name == "params":
        return objectives.ParamCount(num_classes=num_classes, input_shape=shape)
    if name == "flops":
        return objectives.FLOPs(num_classes=num_classes, input_shape=shape)
    assert name == "peak_memory", name
    return objectives.PeakMemory(device=config.device, num_classes=num_classes, input_shape=shape)


def make_sampler(
    config: SearchConfig, cheap: CheapObjectives | None
) -> optuna.samplers.BaseSampler:
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=config.seed)
    if config.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=config.seed)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=config.seed)
    from optuna_devnas.samplers import DPPSampler

    cheap_objectives = {}
    if cheap is not None and config.objective is None:
        cheap_objectives = {
            index: cheap.function(name)
            for index, name in enumerate(config.objectives)
            if name in cheap.functions
        }
    space = cheap.space if cheap is not None else None
    return DPPSampler(
        seed=config.seed, space=space, k=config.k, cheap_objectives=cheap_objectives or None
    )


def _load_user_objective(spec: str) -> Callable[..., Any]:
    path, _, name = spec.rpartition(":")
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"Objective file {path!r} does not exist.")
    module_spec = importlib.util.spec_from_file_location(f"devnas_user_{file.stem}", file)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(f"{path!r} has no function {name!r}.")
    return function


def check_values(values: Any, expected: int) -> tuple[float, ...]:
    """The objective's values as floats; ``ValueError`` (the trial fails) if any is not finite."""
    items = values if isinstance(values, (tuple, list)) else (values,)
    if len(items) != expected:
        raise ValueError(f"Got {len(items)} objective values, but the study has {expected}.")
    floats = tuple(float(v) for v in items)
    if not all(math.isfinite(v) for v in floats):
        raise ValueError(f"Got objective values {floats}, but every value must be finite.")
    return floats


def make_objective(
    config: SearchConfig, space: CellSpace, data: TensorData, cheap: CheapObjectives | None
) -> Callable[[optuna.Trial], tuple[float, ...]]:
    from optuna_devnas.objectives import ValidationError

    n_values = len(directions(config))
    if config.objective is not None:
        user = _load_user_objective(config.objective)

        def user_objective(trial: optuna.Trial) -> tuple[float, ...]:
            return check_values(user(trial, space, data), n_values)

        return user_objective

    train = ValidationError(
        data=data, epochs=config.epochs, lr=config.lr, seed=config.seed, device=config.device
    )

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        arch = space.suggest(trial)
        values: dict[str, float] = {}
        if {"val_error", "val_accuracy"} & set(config.objectives):
            model = train.build(arch)
            error = train.evaluate(model, trial=trial)
            values["val_error"], values["val_accuracy"] = error, 1.0 - error
            _save_weights(trial, model, FileSystemArtifactStore(_artifact_dir(config)))
        for name in config.objectives:
            if cheap is not None and name in cheap.functions:
                values[name] = cheap.value(name, trial.params)
        return check_values([values[name] for name in config.objectives], n_values)

    return objective


def _artifact_dir(config: SearchConfig) -> str:
    path = Path(config.artifacts or DEFAULT_ARTIFACTS)
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _save_weights(
    trial: optuna.Trial, model: torch.nn.Module, store: FileSystemArtifactStore
) -> None:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    # A file of its own: trial ids repeat across databases, and searches may share a machine.
    handle, scratch = tempfile.mkstemp(prefix=f"trial-{trial.number}-", suffix="-weights.pt")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(buffer.getvalue())
        artifact_id = upload_artifact(
            artifact_store=store, file_path=scratch, study_or_trial=trial
        )
    finally:
        Path(scratch).unlink(missing_ok=True)
    trial.set_user_attr(WEIGHTS_ATTR, artifact_id)


def with_absolute_locations(config: SearchConfig) -> SearchConfig:
    """``config`` with its files and folders as absolute paths, so any worker finds them."""
    changes: dict[str, Any] = {}
    for name in ("artifacts", "latency_table", "data_root"):
        value = getattr(config, name)
        if value:
            changes[name] = str(Path(value).expanduser().resolve())
    if config.objective is not None:
        path, _, function = config.objective.rpartition(":")
        changes["objective"] = f"{Path(path).expanduser().resolve()}:{function}"
    return dataclasses.replace(config, **changes)


def settle_config(config: SearchConfig, stored: dict[str, Any] | None) -> SearchConfig:
    """The configuration a search runs with, given the one its study stored (if any).

    A study keeps its artifact folder unless one is given; apart from where the study is
    reached (``LOCATION_KEYS``), the configurations must agree.
    """
    config = with_absolute_locations(config)
    if stored is not None:
        before = SearchConfig.from_dict(stored, source=f"study {config.study!r}")
        if config.artifacts is None:
            config = dataclasses.replace(config, artifacts=before.artifacts)
        old, new = before.search_dict(), config.search_dict()
        changed = sorted(key for key in new if old.get(key) != new[key])
        if changed:
            raise ConfigError(
                f"Study {config.study!r} exists with another configuration (differs in "
                f"{changed}); use another --study name or 'devnas worker' to join it."
            )
    if config.artifacts is None:
        config = dataclasses.replace(config, artifacts=str(Path(DEFAULT_ARTIFACTS).resolve()))
    return config


class SearchJob:
    """A configured search: data, space, cheap objectives, sampler and objective, built once."""

    def __init__(self, config: SearchConfig) -> None:
        self.config = config
        self.data = load_data(config.data, seed=config.seed, root=config.data_root)
        self.space = make_space(config)
        self.cheap = None if config.objective else CheapObjectives(config, self.space, self.data)
        self.objective = make_objective(config, self.space, self.data, self.cheap)

    def create_study(self) -> optuna.Study:
        """Create the study, or continue it if it exists with the same configuration."""
        storage = open_storage(self.config.storage, self.config)
        study = optuna.create_study(
            study_name=self.config.study,
            storage=storage,
            directions=directions(self.config),  # type: ignore[arg-type]  # validated strings
            sampler=make_sampler(self.config, self.cheap),
            load_if_exists=True,
        )
        config = settle_config(self.config, study.user_attrs.get(CONFIG_ATTR))
        if config.trains:
            _artifact_dir(config)  # there from the start, for workers to check they share it
        if config != self.config:
            self.config = config
            self.objective = make_objective(config, self.space, self.data, self.cheap)
        study.set_user_attr(CONFIG_ATTR, config.to_dict())
        study.set_metric_names(config.metric_names)
        return study

    def attach(self, study: optuna.Study) -> optuna.Study:
        """``study`` (loaded by ``load_study``) with this job's sampler."""
        study.sampler = make_sampler(self.config, self.cheap)
        return study

    def optimize(self, study: optuna.Study, *, n_trials: int, show_progress: bool = True) -> None:
        """Run trials until the study holds ``n_trials`` ended ones (all workers together).

        Raises :class:`~optuna_devnas.commands._failures.SearchFailedError` when
        ``max_failures`` trials in a row fail, or when every trial failed. A trial interrupted
        by Ctrl-C is queued again before ``KeyboardInterrupt`` propagates.
        """
        budget = TrialBudget(n_trials=n_trials)
        progress = Progress(
            names=self.config.metric_names, n_trials=n_trials, enabled=show_progress
        )
        sampler = study.sampler.sampler if isinstance(study.sampler, JobSampler) else study.sampler
        gate = JobSampler(sampler, budget=budget, progress=progress)
        study.sampler = gate
        callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = [
            progress,
            FailureLimit(max_failures=self.config.max_failures),
        ]
        progress.header()
        try:
            if self.config.tracking_uri is None:
                self._run_until_done(study, callbacks)
            else:
                from optuna_devnas.tracking import MLflowTracker

                # An empty tracking URI means MLflow's own default (sqlite:///mlflow.db here).
                tracker = MLflowTracker(tracking_uri=self.config.tracking_uri or None)
                with tracker.track(study):
                    self._run_until_done(study, [*callbacks, tracker])
        except KeyboardInterrupt:
            requeue_interrupted(study, gate.current_trial_id)
            raise
        finally:
            study.sampler = sampler
        check_not_all_failed(study.get_trials(deepcopy=False))

    def _run_until_done(
        self,
        study: optuna.Study,
        callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]],
    ) -> None:
        """Run trials while the budget has room, then wait for the other workers' trials.

        Optuna fails a dead worker's trial (stale heartbeat) only when some worker looks. So a
        worker that sees the budget taken while other trials still run waits for them, fails
        the stale ones (which queues them again) and runs what was queued: every trial ends
        or is retried.
        """
        assert isinstance(study.sampler, JobSampler)
        budget, progress = study.sampler.budget, study.sampler.progress
        while True:
            fail_orphans(study)
            state = budget.state(study)
            progress.done = state.ended
            if budget.has_work(state):
                self._run_one(study, callbacks)
            elif state.running:
                progress.waiting(state.running)
                time.sleep(self.config.heartbeat_interval)
                optuna.storages.fail_stale_trials(study)
            else:
                return

    def _run_one(
        self,
        study: optuna.Study,
        callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]],
    ) -> None:
        assert isinstance(study.sampler, JobSampler)
        progress = study.sampler.progress

        def objective(trial: optuna.Trial) -> tuple[float, ...]:
            progress.started(trial.number)
            return self.objective(trial)

        try:
            # A failing trial (NaN, wrong number of values, a crash in training) is recorded
            # as FAIL with its reason and the search goes on (FailureLimit bounds it).
            study.optimize(
                recording_failures(objective), n_trials=1, callbacks=callbacks, catch=(Exception,)
            )
        except BudgetSpent:
            return
        except Exception:
            # Optuna cannot tell a trial another worker failed as stale meanwhile (this one
            # stalled past the grace period); that worker queued it again.
            lost = _failed_elsewhere(study, study.sampler.current_trial_id)
            if lost is None:
                raise
            progress.lost(lost)


def _failed_elsewhere(study: optuna.Study, trial_id: int | None) -> int | None:
    """The number of this worker's trial if another worker failed it (heartbeat too late)."""
    if trial_id is None:
        return None
    trial = stored_trial(study, trial_id)
    if trial.state == optuna.trial.TrialState.FAIL and FAILURE_ATTR not in trial.user_attrs:
        return trial.number
    return None
