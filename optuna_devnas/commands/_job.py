"""What a ``devnas search`` or ``devnas worker`` process runs: storage, sampler, objective.

Both commands build the same study from a :class:`SearchConfig` (``worker`` reads it back from
the study), so every process evaluates the same objective. Storage is Optuna's RDB storage with
a heartbeat: a worker that dies mid-trial leaves a stale trial that the next worker fails and
re-queues with the same parameters (Optuna's ``RetryHeartbeatStaleTrialCallback``), so nothing
is lost. Trained weights go to Optuna's file-system artifact store so ``devnas export`` can
rebuild the exact network later.
"""

from __future__ import annotations

from collections.abc import Callable
import importlib.util
import io
import math
from pathlib import Path
import sys
import time
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
import torch

from optuna_devnas._errors import DevnasError
from optuna_devnas.commands._config import CONFIG_ATTR, ConfigError, SearchConfig
from optuna_devnas.data import TensorData, load_data
from optuna_devnas.spaces import ARCHITECTURE_ATTR, CellSpace

WEIGHTS_ATTR = "devnas:weights"
"""Trial user attribute: artifact id of the trained state dict in the artifact store."""

DIRECTIONS = {
    "val_error": "minimize",
    "val_accuracy": "maximize",
    "latency_ms": "minimize",
    "params": "minimize",
    "flops": "minimize",
}


class StorageError(DevnasError):
    """A storage URL is malformed or its database cannot be reached."""


def open_storage(url: str, config: SearchConfig | None = None) -> optuna.storages.BaseStorage:
    """Optuna's RDB storage for ``url``, with heartbeat and retry of dead workers' trials."""
    import sqlalchemy.exc

    config = config or SearchConfig()
    kwargs: dict[str, Any] = {}
    if config.heartbeat_interval:
        kwargs = {
            "heartbeat_interval": config.heartbeat_interval,
            "grace_period": config.grace_period,
            "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=config.max_retry
            ),
        }
    try:
        return optuna.storages.RDBStorage(url, **kwargs)
    except (sqlalchemy.exc.ArgumentError, ValueError) as error:
        raise StorageError(
            f"Got storage {url!r}, which is not a database URL such as "
            "'sqlite:///devnas.db' or 'postgresql://user@host:5432/db' "
            f"({_first_line(error)})."
        ) from None
    except (sqlalchemy.exc.SQLAlchemyError, ImportError) as error:
        raise StorageError(f"Cannot open storage {url!r}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def load_study(url: str, name: str) -> tuple[optuna.Study, SearchConfig]:
    """An existing study and the configuration it was created with."""
    storage = open_storage(url)
    names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
    if name not in names:
        shown = ", ".join(sorted(names)[:10]) or "none"
        raise DevnasError(f"No study named {name!r} in {url!r} (studies there: {shown}).")
    study = optuna.load_study(study_name=name, storage=storage)
    raw = study.user_attrs.get(CONFIG_ATTR)
    if raw is None:
        raise DevnasError(f"Study {name!r} was not created by 'devnas search' (no configuration).")
    config = SearchConfig.from_dict(raw, source=f"study {name!r}")
    # The heartbeat settings are the study's; reopen the storage with them.
    study = optuna.load_study(study_name=name, storage=open_storage(url, config))
    return study, config


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
    """Latency (ms), parameters and FLOPs of an architecture, each computed once (cached).

    The same cached numbers serve the objective (what a trial returns) and ``DPPSampler``'s
    cheap objectives (what it computes for candidates), so both always agree.
    """

    def __init__(self, config: SearchConfig, space: CellSpace, data: TensorData) -> None:
        from optuna_devnas import objectives

        num_classes, shape = data.num_classes, (1, *data.input_shape)
        self.space = space
        self._scale: dict[str, float] = {}
        self.functions: dict[str, objectives.ParamsObjective] = {}
        for name in config.objectives:
            objective: objectives.Objective
            if name == "latency_ms":
                objective = objectives.Latency(
                    device=config.device,
                    threads=config.latency_threads,
                    num_classes=num_classes,
                    input_shape=shape,
                )
                self._scale[name] = 1e3  # Latency measures seconds
            elif name == "params":
                objective = objectives.ParamCount(num_classes=num_classes, input_shape=shape)
            elif name == "flops":
                objective = objectives.FLOPs(num_classes=num_classes, input_shape=shape)
            else:
                continue
            self.functions[name] = objective.for_space(space)

    def value(self, name: str, params: dict[str, Any]) -> float:
        return self._scale.get(name, 1.0) * self.functions[name](params)

    def function(self, name: str) -> Callable[[dict[str, Any]], float]:
        return lambda params: self.value(name, params)


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
    return DPPSampler(seed=config.seed, space=space, cheap_objectives=cheap_objectives or None)


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
    store = FileSystemArtifactStore(base_path=_artifact_dir(config))

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        arch = space.suggest(trial)
        values: dict[str, float] = {}
        if {"val_error", "val_accuracy"} & set(config.objectives):
            model = train.build(arch)
            error = train.evaluate(model, trial=trial)
            values["val_error"], values["val_accuracy"] = error, 1.0 - error
            _save_weights(trial, model, store)
        for name in config.objectives:
            if cheap is not None and name in cheap.functions:
                values[name] = cheap.value(name, trial.params)
        return check_values([values[name] for name in config.objectives], n_values)

    return objective


def _artifact_dir(config: SearchConfig) -> str:
    path = Path(config.artifacts)
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _save_weights(
    trial: optuna.Trial, model: torch.nn.Module, store: FileSystemArtifactStore
) -> None:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    scratch = Path(_scratch_dir()) / f"trial-{trial._trial_id}-weights.pt"
    scratch.write_bytes(buffer.getvalue())
    try:
        artifact_id = upload_artifact(
            artifact_store=store, file_path=str(scratch), study_or_trial=trial
        )
    finally:
        scratch.unlink(missing_ok=True)
    trial.set_user_attr(WEIGHTS_ATTR, artifact_id)


def _scratch_dir() -> str:
    import tempfile

    return tempfile.gettempdir()


class SearchJob:
    """A configured search: data, space, cheap objectives, sampler and objective, built once."""

    def __init__(self, config: SearchConfig) -> None:
        self.config = config
        self.data = load_data(config.data, seed=config.seed, root=config.data_root)
        self.space = make_space(config)
        self.cheap = None if config.objective else CheapObjectives(config, self.space, self.data)
        self.objective = make_objective(config, self.space, self.data, self.cheap)

    def create_study(self) -> optuna.Study:
        """Create the study (or join it if it exists with the same configuration)."""
        storage = open_storage(self.config.storage, self.config)
        study = optuna.create_study(
            study_name=self.config.study,
            storage=storage,
            directions=directions(self.config),  # type: ignore[arg-type]  # validated strings
            sampler=make_sampler(self.config, self.cheap),
            load_if_exists=True,
        )
        stored = study.user_attrs.get(CONFIG_ATTR)
        if stored is not None and stored != self.config.to_dict():
            changed = sorted(k for k, v in self.config.to_dict().items() if stored.get(k) != v)
            raise ConfigError(
                f"Study {self.config.study!r} exists with another configuration (differs in "
                f"{changed}); use another --study name or 'devnas worker' to join it."
            )
        study.set_user_attr(CONFIG_ATTR, self.config.to_dict())
        study.set_metric_names(self.config.metric_names)
        return study

    def attach(self, study: optuna.Study) -> optuna.Study:
        """``study`` (loaded by ``load_study``) with this job's sampler."""
        study.sampler = make_sampler(self.config, self.cheap)
        return study

    def optimize(self, study: optuna.Study, *, n_trials: int, show_progress: bool = True) -> None:
        """Run trials until the study holds ``n_trials`` complete or pruned ones (all workers)."""
        finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = [
            optuna.study.MaxTrialsCallback(n_trials, states=finished)
        ]
        if show_progress:
            callbacks.append(_progress(self.config, n_trials))
        if self.config.tracking_uri is None:
            self._run_until_done(study, callbacks, n_trials)
            return
        from optuna_devnas.tracking import MLflowTracker

        # An empty tracking URI means MLflow's own default (sqlite:///mlflow.db here).
        tracker = MLflowTracker(tracking_uri=self.config.tracking_uri or None)
        with tracker.track(study):
            self._run_until_done(study, [*callbacks, tracker], n_trials)

    def _run_until_done(
        self,
        study: optuna.Study,
        callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]],
        n_trials: int,
    ) -> None:
        """Optimize until ``n_trials`` are done and no other worker's trial is left hanging.

        Optuna fails a dead worker's trial (stale heartbeat) only when some worker starts a
        trial after the grace period. So a worker that sees the count reached while other
        trials still run waits for them, fails the stale ones (which re-queues them through
        the retry callback) and runs what was re-queued: every trial ends finished or retried.
        """
        finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        waiting = (optuna.trial.TrialState.WAITING,)
        running = (optuna.trial.TrialState.RUNNING,)
        waited = 0.0
        # A worker killed before its trial's first heartbeat (while sampling) leaves a RUNNING
        # trial that Optuna can never fail as stale; stop waiting for such trials after this.
        patience = 2.0 * self.config.grace_period
        while True:
            if _count(study, finished) < n_trials:
                self._optimize(study, callbacks)
            elif _count(study, waiting):
                self._optimize(study, callbacks, n_trials=_count(study, waiting))
            elif _count(study, running) and waited < patience:
                time.sleep(self.config.heartbeat_interval)
                waited += self.config.heartbeat_interval
                optuna.storages.fail_stale_trials(study)
            else:
                return

    def _optimize(
        self,
        study: optuna.Study,
        callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]],
        n_trials: int | None = None,
    ) -> None:
        # A failing trial (NaN, wrong number of values, a crash in training) is recorded as
        # FAIL and the study goes on.
        study.optimize(self.objective, n_trials=n_trials, callbacks=callbacks, catch=(Exception,))


def _count(study: optuna.Study, states: tuple[optuna.trial.TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _progress(
    config: SearchConfig, n_trials: int
) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    started = time.perf_counter()
    names = config.metric_names

    def show(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = sum(
            t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL
            for t in study.get_trials(deepcopy=False)
        )
        stage = trial.system_attrs.get("DPPSampler:stage", "-")
        arch = trial.user_attrs.get(ARCHITECTURE_ATTR)
        cell = "-".join(arch["layers"]) if arch else ""
        if trial.values is not None:
            shown = " ".join(f"{n}={v:.4g}" for n, v in zip(names, trial.values))
        else:
            shown = trial.state.name
        elapsed = time.perf_counter() - started
        print(
            f"[{done}/{n_trials} {elapsed:6.0f}s] trial {trial.number} stage {stage}: "
            f"{shown} {cell}",
            file=sys.stdout,
            flush=True,
        )

    return show
