from __future__ import annotations

import pickle

import pytest
from torch import nn

from optuna_devnas.objectives import Objective, ParamCount, ParamsObjective
from optuna_devnas.spaces import CellSpace


class CountingObjective(Objective):
    name = "layers"
    direction = "minimize"

    def __init__(self) -> None:
        self.input_shape = (1, 8, 8)
        self.calls = 0

    def evaluate(self, model: nn.Module) -> float:
        self.calls += 1
        return float(len(list(model.modules())))


def test_for_space_evaluates_each_architecture_once() -> None:
    space = CellSpace(max_layers=3)
    objective = CountingObjective()
    function = objective.for_space(space)
    params = {"cell.n_layers": 2, "cell.layer_0": "conv3x3", "cell.layer_1": "bn", "lr": 0.1}
    first = function(params)
    # The same architecture through other parameter values: unused layers, other params.
    again = function({**params, "cell.layer_2": "conv1x1", "lr": 0.5})
    assert first == again == objective(space.architecture(["conv3x3", "bn"]))
    assert objective.calls == 2  # one through the function (cached), one direct call
    other = function({"cell.n_layers": 1, "cell.layer_0": "conv1x1"})
    assert other != first
    assert objective.calls == 3
    assert len(function.cache) == 2
    assert function.name == "layers" and function.direction == "minimize"


def test_params_objective_pickles_with_its_cache() -> None:
    space = CellSpace(max_layers=2)
    function = ParamCount(input_shape=(1, 8, 8)).for_space(space)
    value = function({"cell.n_layers": 1, "cell.layer_0": "conv1x1"})
    copy = pickle.loads(pickle.dumps(function))
    assert copy.cache == function.cache
    assert copy({"cell.n_layers": 1, "cell.layer_0": "conv1x1"}) == value


def test_bad_targets_and_objects_are_refused() -> None:
    with pytest.raises(TypeError, match="Got str"):
        ParamCount()("conv3x3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a CellSpace"):
        ParamsObjective(ParamCount(), "cell")  # type: ignore[arg-type]
