from __future__ import annotations

from collections.abc import Callable
import dataclasses
import json
import math
from pathlib import Path
import shutil

import optuna
from optuna.distributions import FloatDistribution
import pytest

from optuna_devnas.data import TensorData
from optuna_devnas.instanas import (
    InstaNAS,
    InstaNASConfig,
    InstaNASObjective,
    OptionLatencyTable,
    suggest_config,
)
from optuna_devnas.tracking import MLflowTracker

PER_STEP = ("reward", "accuracy", "table_latency", "policy_entropy", "options_used")


def test_trial_logs_the_controller_reward_to_mlflow_and_repeats_with_its_seed(
    digits: TensorData,
    fixed_table: OptionLatencyTable,
    migrated_store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny: InstaNASConfig,
    take: Callable[..., TensorData],
) -> None:
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # a SQLite store keeps artifacts in ./mlruns
    shutil.copy(migrated_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    data = take(digits, 128, 90)
    config = dataclasses.replace(tiny, measure_every_epoch=True, latency_images=2)
    objective = InstaNASObjective(data=data, config=config, latency_table=fixed_table)
    study = optuna.create_study(
        directions=["minimize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0)
    )
    tracker = MLflowTracker(tracking_uri=uri, experiment_name="instanas")
    with tracker.track(study):
        study.optimize(objective, n_trials=1, callbacks=[tracker])

    trial = study.trials[0]
    result = objective.last_result
    assert result is not None and trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.values == [result.val_error, result.latency]
    assert {name.removeprefix("instanas.") for name in trial.params} == {
        "upper_start",
        "upper_end",
        "pos_w",
        "neg_w",
        "lr",
        "controller_lr",
    }
    steps = tiny.search_epochs * math.ceil(128 / tiny.batch_size)
    assert len(result.rewards) == steps

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("instanas")
    assert experiment is not None
    runs = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`devnas.role` = 'trial'"
    )
    assert len(runs) == 1
    run_id = runs[0].info.run_id
    tags = runs[0].data.tags  # the trial's user attributes, as tags
    assert tags["instanas.children"] == str(trial.user_attrs["instanas:children"])
    assert json.loads(tags["instanas.child_counts"]) == trial.user_attrs["instanas:child_counts"]
    history = sorted(client.get_metric_history(run_id, "instanas.reward"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(steps))
    assert [m.value for m in history] == pytest.approx(result.rewards)
    for key in PER_STEP[1:]:
        assert len(client.get_metric_history(run_id, f"instanas.{key}")) == steps
    epochs = tiny.pretrain_epochs + tiny.search_epochs + tiny.finetune_epochs
    assert len(client.get_metric_history(run_id, "instanas.epoch_val_error")) == epochs
    measured = client.get_metric_history(run_id, "instanas.epoch_measured_latency")
    assert len(measured) == tiny.search_epochs + tiny.finetune_epochs
    assert all(m.value > 0 for m in measured)

    # The same settings and seed give the same run (only timings differ).
    config = InstaNASConfig(**trial.user_attrs["instanas:config"])
    again = InstaNAS(config=config, latency_table=fixed_table).fit(data)
    assert again.rewards == result.rewards
    assert again.val_error == result.val_error
    assert again.policy == result.policy
    assert [r["val_error"] for r in again.history] == [r["val_error"] for r in result.history]


class _PruneAll(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_single_objective_studies_get_intermediate_values_and_can_prune(
    digits: TensorData,
    fixed_table: OptionLatencyTable,
    tiny: InstaNASConfig,
    take: Callable[..., TensorData],
) -> None:
    config = InstaNASConfig(**{**tiny.to_dict(), "pretrain_epochs": 0})
    instanas = InstaNAS(config=config, latency_table=fixed_table)

    def objective(trial: optuna.Trial) -> float:
        return instanas.fit(take(digits, 128, 90), trial=trial).val_error

    study = optuna.create_study(pruner=_PruneAll())
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]  # pruned after the first search epoch


def test_suggest_config_uses_the_search_space(tiny: InstaNASConfig) -> None:
    trial = optuna.create_study().ask()
    config = suggest_config(trial, tiny, {"pos_w": FloatDistribution(5.0, 6.0)})
    assert 5.0 <= config.pos_w <= 6.0 and trial.params == {"instanas.pos_w": config.pos_w}
    assert config.width_mult == tiny.width_mult
    with pytest.raises(ValueError, match="'width'"):
        suggest_config(trial, tiny, {"width": FloatDistribution(0.1, 1.0)})
