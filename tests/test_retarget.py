"""``retarget``: a finished search copied to another device's objectives without retraining."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys
import warnings

import optuna
from optuna.trial import TrialState
import pytest

from optuna_devnas import CellSpace, retarget
from optuna_devnas._retarget import RETARGET_ATTR
from optuna_devnas.samplers import STAGE_KEY, DPPSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = CellSpace(max_layers=3)
COST = {"conv1x1": 1.0, "conv3x3": 9.0, "group_conv1x1": 0.5, "group_conv3x3": 3.0}


def error(params: dict) -> float:
    arch = SPACE.from_params(params)
    return 1.0 / (1 + arch.n_layers) + 0.01 * len(arch.layers[0])


def latency_a(params: dict) -> float:
    return sum(COST.get(name, 0.7) for name in SPACE.from_params(params).layers)


def latency_b(params: dict) -> float:  # another device: convolutions cost the other way round
    return sum(10.0 - COST.get(name, 3.0) for name in SPACE.from_params(params).layers)


def _source(n_trials: int = 12) -> optuna.Study:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        arch = SPACE.suggest(trial)
        if arch.layers[0] == "depthwise_conv3x3":
            raise RuntimeError("does not train")
        if arch.layers[0] == "learned_group_conv1x1":
            raise optuna.TrialPruned()
        trial.set_constraint("memory", latency_a(trial.params) - 5.0)
        return error(trial.params), latency_a(trial.params)

    sampler = DPPSampler(space=SPACE, k=3, cheap_objectives={1: latency_a}, seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))
    return study


def test_values_kept_and_recomputed_states_copied_and_nothing_twice() -> None:
    source = _source()
    states = [t.state for t in source.trials]
    assert TrialState.FAIL in states and TrialState.PRUNED in states
    target = optuna.create_study(directions=["minimize", "minimize"])
    assert retarget(source, target, objectives={1: latency_b}) == len(source.trials)
    for old, new in zip(source.trials, target.trials, strict=True):
        assert new.state == old.state and new.params == old.params
        assert new.system_attrs[RETARGET_ATTR] == {"study": source.study_name, "trial": old.number}
        assert new.system_attrs.get(STAGE_KEY) == old.system_attrs.get(STAGE_KEY)
        assert new.user_attrs == old.user_attrs
        if old.state == TrialState.COMPLETE:
            assert new.values == [old.values[0], latency_b(old.params)]
            assert new.constraints == old.constraints  # copied, not recomputed
    assert retarget(source, target, objectives={1: latency_b}) == 0  # idempotent
    assert len(target.trials) == len(source.trials)
    # The target's front is the new device's: computed at once, without training.
    best = {tuple(t.values) for t in target.best_trials}
    complete = [t for t in target.trials if t.state == TrialState.COMPLETE and t.constraints]
    assert best and best <= {tuple(t.values) for t in complete}


def test_constraints_recomputed_when_given() -> None:
    source = _source(8)
    target = optuna.create_study(directions=["minimize", "minimize"])
    retarget(
        source,
        target,
        objectives={1: latency_b},
        constraints=lambda params: {"memory": latency_b(params) - 12.0},
    )
    for trial in target.get_trials(states=(TrialState.COMPLETE,)):
        assert trial.constraints == {"memory": latency_b(trial.params) - 12.0}


@pytest.mark.parametrize(
    "directions, objectives, match",
    [
        (["minimize", "maximize"], {1: latency_b}, "directions"),
        (["minimize", "minimize"], {2: latency_b}, "objectives key 2"),
        (["minimize", "minimize"], {1: "fast"}, "objectives\\[1\\]"),
        (["minimize", "minimize"], {1: lambda params: float("inf")}, "finite"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(
    directions: list[str], objectives: dict, match: str
) -> None:
    source = _source(6)
    target = optuna.create_study(directions=directions)
    with pytest.raises(ValueError, match=match):
        retarget(source, target, objectives=objectives)
    assert target.trials == []
    with pytest.raises(ValueError, match="same study"):
        retarget(source, source, objectives={})


def test_dpp_sampler_continues_on_the_target_where_the_new_front_lacks() -> None:
    source = _source(18)
    target = optuna.create_study(
        directions=["minimize", "minimize"],
        sampler=DPPSampler(space=SPACE, k=3, cheap_objectives={1: latency_b}, seed=0),
    )
    copied = retarget(source, target, objectives={1: latency_b})

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        SPACE.suggest(trial)
        return error(trial.params), latency_b(trial.params)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to the independent sampler
        target.optimize(objective, n_trials=3)
    new = target.trials[copied:]
    # The stages go on from the source's last one (its batch ranked anew for this device).
    last_stage = max(t.system_attrs.get(STAGE_KEY, 0) for t in source.trials)
    assert all(t.system_attrs[STAGE_KEY] >= last_stage for t in new)
    seen = {SPACE.from_params(t.params).canonical() for t in target.trials[:copied]}
    assert all(SPACE.from_params(t.params).canonical() not in seen for t in new)


def test_example_prints_the_new_front_before_training(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(Path(__file__).resolve().parents[1] / "examples" / "retarget.py"),
        *("--trials", "8", "--more", "2", "--epochs", "1", "--max-layers", "2"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Device A (1 thread): 8 networks trained; its Pareto front:"
    copied = next(i for i, line in enumerate(lines) if line.startswith("Device B (2 threads)"))
    assert lines[copied].startswith("Device B (2 threads): 8 trials copied, no training")
    more = next(i for i, line in enumerate(lines) if line.startswith("Device B after 2 more"))
    # Before any training B's front is made of networks A trained: it shares their errors.
    errors_a = {line.split()[0] for line in lines[1:copied]}
    trained = {line.split()[0] for line in lines[copied + 1 : more]}
    assert trained and all(float(e) <= 1 for e in trained)
    assert errors_a & trained
