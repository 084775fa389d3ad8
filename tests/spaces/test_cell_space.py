from __future__ import annotations

import optuna
import pytest

from optuna_devnas import Architecture, CellSpace, InvalidArchitectureError
from optuna_devnas.spaces import ARCHITECTURE_ATTR, SPACE_ATTR


def test_suggest_records_the_cell_define_by_run() -> None:
    space = CellSpace(max_layers=3)
    seen: list[Architecture] = []

    def objective(trial: optuna.Trial) -> float:
        arch = space.suggest(trial)
        seen.append(arch)
        return float(arch.n_layers)

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=20)
    for trial, arch in zip(study.trials, seen):
        assert space.from_params(trial.params) == arch
        assert trial.params == space.to_params(arch)
        assert len(trial.params) == arch.n_layers + 1
        assert trial.user_attrs[ARCHITECTURE_ATTR] == arch.to_dict()
        assert CellSpace.from_dict(trial.user_attrs[SPACE_ATTR]) == space
    assert {a.n_layers for a in seen} == {1, 2, 3}


def test_space_size_and_enumeration() -> None:
    space = CellSpace(max_layers=3)
    assert [
        len(space.initial()),
        len(list(space.enumerate(2))),
        len(list(space.enumerate(3))),
    ] == [
        6,
        18,
        108,
    ]
    assert space.size() == 6 + 18 + 108
    assert all(a.n_layers == 1 for a in space.initial())


def test_bad_arguments_and_foreign_architectures() -> None:
    with pytest.raises(ValueError, match="max_layers=0"):
        CellSpace(max_layers=0)
    with pytest.raises(ValueError, match="growth_rates"):
        CellSpace(growth_rates=(8, 16))
    space = CellSpace(max_layers=2)
    with pytest.raises(InvalidArchitectureError, match="at most 2"):
        space.architecture(("conv1x1", "bn", "conv1x1"))
    with pytest.raises(InvalidArchitectureError, match="macro settings"):
        space.validate(Architecture(layers=("conv1x1",), stem_channels=8))
    with pytest.raises(InvalidArchitectureError, match="cell.n_layers"):
        space.from_params({"lr": 0.1})
