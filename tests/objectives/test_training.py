from __future__ import annotations

import time

import optuna
import pytest
import torch

from optuna_devnas import CellSpace, ValidationAccuracy, ValidationError, load_digits
from optuna_devnas.tracking import add_step_listener, remove_step_listener


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_digits(seed=0)


def test_two_layer_cell_reaches_90_percent_in_10_seconds(digits) -> None:  # type: ignore[no-untyped-def]
    arch = CellSpace().architecture(("conv3x3", "bn_relu"))
    train = ValidationAccuracy(data=digits, epochs=4, seed=0)
    start = time.process_time()
    accuracy = train(arch)
    cpu_seconds = time.process_time() - start
    assert accuracy >= 0.90, train.history
    # CPU time, not wall-clock: other jobs on a shared CI machine must not fail the test.
    # 10 s on each of this machine's 2 cores at most.
    assert cpu_seconds < 20.0


def test_training_is_reproducible_with_a_seed(digits) -> None:  # type: ignore[no-untyped-def]
    arch = CellSpace().architecture(("learned_group_conv1x1", "bn_relu"))
    runs = [ValidationError(data=digits, epochs=2, seed=3) for _ in range(2)]
    assert runs[0](arch) == runs[1](arch)
    assert runs[0].history == runs[1].history
    other = ValidationError(data=digits, epochs=2, seed=4)
    other(arch)
    assert other.history != runs[0].history


def test_learned_group_convs_end_condensed(digits) -> None:  # type: ignore[no-untyped-def]
    from optuna_devnas.spaces import LearnedGroupConv

    arch = CellSpace().architecture(("learned_group_conv1x1", "bn_relu"))
    train = ValidationError(data=digits, epochs=1)
    model = train.build(arch)
    train.evaluate(model)
    convs = [m for m in model.modules() if isinstance(m, LearnedGroupConv)]
    assert convs and all(c.stage == c.condense_factor - 1 for c in convs)


def test_epochs_are_reported_and_pruning_works(digits) -> None:  # type: ignore[no-untyped-def]
    space = CellSpace(max_layers=2)
    train = ValidationError(data=digits, epochs=3)
    steps: list[tuple[int, str, int]] = []

    def listener(trial: optuna.Trial, key: str, value: float, step: int) -> None:
        steps.append((trial.number, key, step))

    def objective(trial: optuna.Trial) -> float:
        return train(space.suggest(trial), trial=trial)

    add_step_listener(listener)
    try:
        # A pruner that stops every trial after its first report.
        study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0))
        study.optimize(objective, n_trials=2)
    finally:
        remove_step_listener(listener)
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    assert all(list(t.intermediate_values) == [0] for t in study.trials)
    assert steps == [(0, "val_error", 0), (1, "val_error", 0)]


def test_multi_objective_studies_train_without_reporting(digits) -> None:  # type: ignore[no-untyped-def]
    space = CellSpace(max_layers=1)
    train = ValidationError(data=digits, epochs=1)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        arch = space.suggest(trial)
        return train(arch, trial=trial), float(arch.n_layers)

    study = optuna.create_study(directions=["minimize", "minimize"])
    study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="epochs=0"):
        ValidationError(epochs=0)
    with pytest.raises(ValueError, match="device='tpu'"):
        ValidationError(device="tpu")
    with pytest.raises(ValueError, match="data set 'mnist'"):
        ValidationError(data="mnist")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            ValidationError(device="cuda")
    with pytest.raises(TypeError, match="expected a torch.nn.Module or an Architecture"):
        ValidationError(epochs=1)("conv3x3")  # type: ignore[arg-type]
