from __future__ import annotations

import datetime

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
import pytest

from optuna_devnas.spaces import ARCHITECTURE_ATTR, CellSpace
from optuna_devnas.tracking import _records
from optuna_devnas.tracking._records import mlflow_key, objective_names, trial_record

START = datetime.datetime(2026, 1, 2, 3, 4, 5)


def make_trial(**kwargs: object) -> optuna.trial.FrozenTrial:
    arch = CellSpace().initial()[1]
    defaults: dict = dict(
        state=TrialState.COMPLETE,
        values=[0.2, 3.0],
        params={"cell.n_layers": 1, "lr": 0.1},
        distributions={
            "cell.n_layers": CategoricalDistribution([1, 2]),
            "lr": FloatDistribution(0.01, 1.0),
        },
        user_attrs={ARCHITECTURE_ATTR: arch.to_dict()},
        system_attrs={
            "constraints:latency": 0.5,
            "DPPSampler:stage": 2,
            "DPPSampler:prediction": 0.31,
            "DPPSampler:pool": ["conv1x1", "conv3x3"],
            "NSGAIISampler:generation": 4,
            "devnas:steps:val error": [[0, 0.5, 1000], [1, 0.3, 2000]],
            "unrelated": 7,
        },
        intermediate_values={0: 0.6, 1: 0.4},
    )
    defaults.update(kwargs)
    trial = create_trial(**defaults)
    trial.datetime_start = START
    trial.datetime_complete = START + datetime.timedelta(seconds=2.5)
    return trial


def test_a_trial_becomes_params_metrics_and_tags() -> None:
    record = trial_record(make_trial(), ["val_error", "latency ms"])
    end = int((START + datetime.timedelta(seconds=2.5)).timestamp() * 1000)
    params = {p.key: p.value for p in record.params}
    assert params == {"cell.n_layers": "1", "lr": "0.1", "architecture": "conv3x3"}
    metrics = {(m.key, m.step): (m.value, m.timestamp) for m in record.metrics}
    assert metrics == {
        ("val_error", 0): (0.2, end),
        ("latency ms", 0): (3.0, end),
        ("duration_s", 0): (2.5, end),
        ("constraint.latency", 0): (0.5, end),
        ("DPPSampler.stage", 0): (2.0, end),
        ("DPPSampler.prediction", 0): (0.31, end),
        ("NSGAIISampler.generation", 0): (4.0, end),
        ("intermediate_value", 0): (0.6, end),
        ("intermediate_value", 1): (0.4, end),
        ("val error", 0): (0.5, 1000),
        ("val error", 1): (0.3, 2000),
    }
    tags = {t.key: t.value for t in record.tags}
    assert tags == {
        "optuna.state": "COMPLETE",
        "optuna.feasible": "false",
        "DPPSampler.pool": '["conv1x1", "conv3x3"]',
    }
    assert record.status == "FINISHED" and record.end_time == end
    assert record.architecture == CellSpace().initial()[1].to_dict()


def test_record_is_deterministic_and_skips_points_already_sent() -> None:
    trial = make_trial()
    assert trial_record(trial, ["a", "b"]) == trial_record(trial, ["a", "b"])
    skipped = trial_record(trial, ["a", "b"], skip_steps=[("val error", 0)])
    assert [(m.key, m.step) for m in skipped.metrics if m.key == "val error"] == [("val error", 1)]


def test_an_objective_named_like_a_curve_ends_the_curve() -> None:
    record = trial_record(make_trial(), ["val error", "size"])
    curve = sorted((m.timestamp, m.step, m.value) for m in record.metrics if m.key == "val error")
    assert [(step, value) for _, step, value in curve] == [(0, 0.5), (1, 0.3), (1, 0.2)]


def test_failed_and_pruned_trials_map_to_mlflow_statuses() -> None:
    failed = make_trial(
        state=TrialState.FAIL, values=None, user_attrs={}, system_attrs={"fail_reason": "boom"}
    )
    record = trial_record(failed, ["a", "b"])
    assert record.status == "FAILED" and record.architecture is None
    assert {t.key: t.value for t in record.tags}["optuna.fail_reason"] == "boom"
    assert "architecture" not in {p.key for p in record.params}
    assert not {"a", "b"} & {m.key for m in record.metrics}
    pruned = trial_record(make_trial(state=TrialState.PRUNED, values=None), ["a", "b"])
    assert pruned.status == "KILLED"


def test_mlflow_key_keeps_valid_names_and_repairs_the_rest() -> None:
    assert mlflow_key("val_error") == "val_error"
    assert mlflow_key("DPPSampler:stage") == "DPPSampler.stage"
    assert mlflow_key("latency (ms)") == "latency _ms_"
    assert mlflow_key("../up") == "_.._up"
    assert mlflow_key("a//b") == "_a__b"
    assert _records.ARCHITECTURE_ATTR == ARCHITECTURE_ATTR  # spelled out there, no torch


def test_objective_names_prefer_the_studys_own() -> None:
    single = optuna.create_study()
    assert objective_names(single, None) == ["value"]
    double = optuna.create_study(directions=["minimize", "maximize"])
    assert objective_names(double, None) == ["values_0", "values_1"]
    assert objective_names(double, ["err", "acc"]) == ["err", "acc"]
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        double.set_metric_names(["error", "accuracy"])
    assert objective_names(double, ["err", "acc"]) == ["error", "accuracy"]
    with pytest.raises(ValueError, match="has 2 objective"):
        objective_names(double, ["a", "b", "c"])  # even where the study names its own
    with pytest.raises(ValueError, match="distinct"):
        objective_names(optuna.create_study(directions=["minimize"] * 2), ["a:", "a."])


def test_user_attrs_become_tags_and_sampler_bookkeeping_stays_out() -> None:
    user_attrs = {
        ARCHITECTURE_ATTR: CellSpace().initial()[1].to_dict(),  # a param and an artifact already
        "instanas:children": 3,
        "instanas:child_counts": [5, 2, 1],
        "mlflow.runName": "not MLflow's own",
        "devnas:failure": "ValueError: out of memory",
    }
    system_attrs = {
        "DPPSampler:claim": {"key": "[1]", "time": 2.0},
        "DPPSampler:params": {"cell.n_layers": 1},
        "DPPSampler:architecture": {"layers": ["conv3x3"]},
        "DPPSampler:prediction": {"0": {"mean": 0.2, "std": 0.05}, "1": {"mean": 3.0, "std": 0}},
        "DPPSampler:stage": 1,
    }
    trial = make_trial(state=TrialState.FAIL, values=None, user_attrs=user_attrs,
                       system_attrs=system_attrs)  # fmt: skip
    record = trial_record(trial, ["a", "b"])
    tags = {t.key: t.value for t in record.tags}
    assert tags == {
        "optuna.state": "FAIL",
        "optuna.fail_reason": "ValueError: out of memory",  # what track_in_mlflow recorded
        "instanas.children": "3",
        "instanas.child_counts": "[5, 2, 1]",
        "user.mlflow.runName": "not MLflow's own",
    }
    metrics = {m.key: m.value for m in record.metrics if m.key.startswith("DPPSampler")}
    assert metrics == {
        "DPPSampler.stage": 1.0,
        "DPPSampler.prediction.0.mean": 0.2,
        "DPPSampler.prediction.0.std": 0.05,
        "DPPSampler.prediction.1.mean": 3.0,
        "DPPSampler.prediction.1.std": 0.0,
    }
