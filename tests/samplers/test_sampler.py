from __future__ import annotations

from collections.abc import Callable
import json
import os
from pathlib import Path
import subprocess
import sys
import uuid
import warnings

import numpy as np
import optuna
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
)
from optuna.trial import TrialState
import pytest

from optuna_devnas.samplers import (
    ARCHITECTURE_KEY,
    CLAIM_KEY,
    PARAMS_KEY,
    PREDICTION_KEY,
    STAGE_KEY,
    DPPSampler,
    _stages,
)
from optuna_devnas.samplers._cells import CellPlanner, cell_distributions
from optuna_devnas.samplers._planning import Choice, Ranker, TrialView
from optuna_devnas.spaces import Architecture, CellSpace
from tests.samplers._objectives import SPACE, cost, error, objective

optuna.logging.set_verbosity(optuna.logging.WARNING)
HERE = Path(__file__).parent


class TestDPPSamplerContract(
    BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase
):
    @pytest.fixture
    def sampler(self) -> Callable[[], DPPSampler]:
        return lambda: DPPSampler(seed=0)


def _layers(trial: optuna.trial.FrozenTrial) -> tuple[str, ...]:
    return SPACE.from_params(trial.params).layers


def _stage(trial: optuna.trial.FrozenTrial) -> int | None:
    return trial.system_attrs.get(STAGE_KEY)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 0}, "k=0"),
        ({"k": 2.0}, "k=2.0"),
        ({"selection": "best"}, "selection='best'"),
        ({"cheap_objectives": {-1: cost}}, "-1"),
        ({"cheap_objectives": {1: "latency"}}, "cheap_objectives\\[1\\]"),
        ({"n_startup_trials": 0}, "n_startup_trials=0"),
        ({"space": "cell"}, "space='cell'"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DPPSampler(**kwargs)


def test_cheap_objective_index_out_of_range_fails_at_first_trial() -> None:
    sampler = DPPSampler(space=SPACE, cheap_objectives={2: cost})
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    with pytest.raises(ValueError, match="cheap_objectives index 2.*2 objective"):
        study.optimize(objective, n_trials=1)


def test_stages_grow_one_layer_at_a_time() -> None:
    sampler = DPPSampler(space=SPACE, k=3, cheap_objectives={1: cost}, seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=16)
    stages = [_stage(t) for t in study.trials]
    assert stages == sorted(stages)
    assert stages[:6] == [1] * 6 and stages[6:9] == [2] * 3 and stages[9:12] == [3] * 3
    assert {_layers(t) for t in study.trials[:6]} == {a.layers for a in SPACE.initial()}
    for trial in study.trials[:12]:
        assert len(_layers(trial)) == _stage(trial)
        arch = Architecture.from_dict(trial.system_attrs[ARCHITECTURE_KEY])
        assert arch == SPACE.from_params(trial.params)
        assert trial.system_attrs[PARAMS_KEY] == trial.params
    parents = {_layers(t) for t in study.trials[:6]}
    assert all(_layers(t)[:1] in parents for t in study.trials[6:9])
    # After the last stage (3 layers) the search goes on around the Pareto set.
    assert stages[12:] == [4, 4, 4, 5]
    for trial in study.trials[6:]:
        prediction = trial.system_attrs[PREDICTION_KEY]
        assert set(prediction) == {"0"} and prediction["0"]["std"] >= 0
    keys = [_layers(t) for t in study.trials]
    assert len(set(keys)) == len(keys)


def test_space_is_recognised_without_arguments() -> None:
    study = optuna.create_study(
        directions=["minimize", "minimize"], sampler=DPPSampler(k=2, seed=1)
    )
    study.optimize(objective, n_trials=10)
    first, rest = study.trials[0], study.trials[1:]
    assert _stage(first) is None  # Nothing told the sampler the space before it ran.
    one_layer = {a.layers for a in SPACE.initial()}
    stage_one = [t for t in rest if _stage(t) == 1]
    # The first trial's network (``conv1x1-identity`` is ``conv1x1``) is not trained again.
    first_network = SPACE.from_params(first.params).canonical().layers
    assert {_layers(t) for t in stage_one} | ({first_network} & one_layer) == one_layer
    assert [_stage(t) for t in rest] == sorted(_stage(t) for t in rest)
    assert all(len(_layers(t)) == 2 for t in rest if _stage(t) == 2)


def test_pareto_selection_keeps_predicted_front() -> None:
    sampler = DPPSampler(space=SPACE, k=2, selection="pareto", cheap_objectives={1: cost})
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=8)
    assert [_stage(t) for t in study.trials] == [1] * 6 + [2] * 2


def test_failed_and_infeasible_trials_never_become_parents() -> None:
    def constrained(trial: optuna.Trial) -> tuple[float, float]:
        arch = SPACE.suggest(trial)
        if arch.layers[0] == "conv3x3":
            raise RuntimeError("this cell does not train")
        trial.set_constraint("memory", 1.0 if arch.layers[0] == "conv1x1" else -1.0)
        return error(trial.params), cost(trial.params)

    sampler = DPPSampler(space=SPACE, k=4, cheap_objectives={1: cost}, seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(constrained, n_trials=14, catch=(RuntimeError,))
    assert sum(t.state == TrialState.FAIL for t in study.trials) == 1
    grown = [t for t in study.trials if _stage(t) in (2, 3)]
    assert len(grown) == 8
    assert all(_layers(t)[0] not in ("conv3x3", "conv1x1") for t in grown)


def test_enqueued_trial_keeps_its_architecture_and_holds_it() -> None:
    sampler = DPPSampler(space=SPACE, k=2, cheap_objectives={1: cost}, seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    fixed = SPACE.to_params(SPACE.architecture(["conv3x3", "bn", "conv1x1"]))
    study.enqueue_trial(fixed)
    study.optimize(objective, n_trials=9)
    assert study.trials[0].params == fixed
    claim = study.trials[0].system_attrs[CLAIM_KEY]
    assert json.loads(claim["key"]) == fixed
    assert sorted(_stage(t) for t in study.trials[1:]) == [1] * 6 + [2] * 2
    keys = [_layers(t) for t in study.trials]
    assert len(set(keys)) == len(keys)


def test_a_claim_yields_to_an_earlier_or_unfinished_rival_claim() -> None:
    sampler = DPPSampler(space=SPACE)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    storage = study._storage
    x, y = (Choice(SPACE.to_params(a), 1, None) for a in SPACE.initial()[:2])
    dists = cell_distributions(SPACE)
    rival = storage.create_new_trial(study._study_id)
    mine = storage.get_trial(storage.create_new_trial(study._study_id))
    # Seen after our own write (the race): an earlier claim of x wins, we take y.
    storage.set_trial_system_attr(rival, CLAIM_KEY, {"key": x.key, "time": 0.0})
    assert sampler._claim(study, mine, [x, y], dists) == y
    # A rival claim whose time is not written yet may be the earlier one: yield too.
    storage.set_trial_system_attr(rival, CLAIM_KEY, {"key": x.key, "time": None})
    assert sampler._claim(study, mine, [x, y], dists) == y
    # A later rival claim loses: it will see ours and yield.
    storage.set_trial_system_attr(rival, CLAIM_KEY, {"key": x.key, "time": 4e9})
    assert sampler._claim(study, mine, [x, y], dists) == x
    assert storage.get_trial(mine._trial_id).system_attrs[CLAIM_KEY]["key"] == x.key
    # A trial that already finished with x holds it, whatever the times.
    storage.set_trial_system_attr(rival, CLAIM_KEY, {"key": x.key, "time": 4e9})
    study.enqueue_trial(x.params)
    study.optimize(objective, n_trials=1)
    assert SPACE.from_params(study.trials[-1].params) == SPACE.from_params(x.params)
    assert sampler._claim(study, mine, [x, y], dists) == y
    # Nothing left: the claim is withdrawn.
    storage.set_trial_system_attr(rival, CLAIM_KEY, {"key": x.key, "time": 0.0})
    assert sampler._claim(study, mine, [x], dists) is None
    assert storage.get_trial(mine._trial_id).system_attrs[CLAIM_KEY] is None


def test_restart_continues_the_same_stage(tmp_path: Path) -> None:
    def run(url: str, counts: list[int]) -> list[tuple[str, ...]]:
        for n in counts:
            study = optuna.create_study(
                study_name="s",
                storage=url,
                load_if_exists=True,
                directions=["minimize", "minimize"],
                sampler=DPPSampler(space=SPACE, k=4, cheap_objectives={1: cost}, seed=0),
            )
            study.optimize(objective, n_trials=n)
        return [(str(_stage(t)), *_layers(t)) for t in study.trials]

    stopped = run(f"sqlite:///{tmp_path / 'a.db'}", [15, 3])
    straight = run(f"sqlite:///{tmp_path / 'b.db'}", [18])
    assert [s[0] for s in stopped[14:]] == ["4"] * 4
    assert stopped == straight


def _workers(url: str, tmp_path: Path, n_workers: int = 4, n_trials: int = 10) -> None:
    name = f"dpp-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=url, directions=["minimize", "minimize"])
    script = tmp_path / "worker.py"
    script.write_text(
        "import sys, optuna\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from _objectives import SPACE, cost, objective\n"
        "from optuna_devnas.samplers import DPPSampler\n"
        "optuna.logging.set_verbosity(optuna.logging.WARNING)\n"
        f"study = optuna.load_study(study_name={name!r}, storage={url!r},\n"
        "    sampler=DPPSampler(space=SPACE, k=4, cheap_objectives={1: cost}))\n"
        f"study.optimize(objective, n_trials={n_trials})\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)
        for _ in range(n_workers)
    ]
    errors = [p.communicate(timeout=500)[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    study = optuna.load_study(study_name=name, storage=url)
    try:
        trials = study.get_trials(states=(TrialState.COMPLETE,))
        assert len(trials) == n_workers * n_trials
        networks = [SPACE.from_params(t.params).canonical() for t in trials]
        assert len(set(networks)) == len(networks)
        assert max(_stage(t) or 0 for t in trials) >= 3
        # Extra workers train the stage's next-ranked cells or the next stage's best guess,
        # not random cells of other lengths (stage 0).
        assert all(_stage(t) for t in trials)
    finally:
        optuna.delete_study(study_name=name, storage=url)


@pytest.mark.slow
def test_four_processes_on_sqlite_never_train_an_architecture_twice(tmp_path: Path) -> None:
    _workers(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)


@pytest.mark.slow
def test_four_processes_on_postgresql_never_train_an_architecture_twice(tmp_path: Path) -> None:
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; psycopg2 is what is installed.
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
    try:
        optuna.storages.RDBStorage(url)
    except Exception as error:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL is not reachable: {error}")
    _workers(url, tmp_path)


def test_any_search_space_with_cheap_objective_uses_the_surrogate() -> None:
    def mixed(trial: optuna.Trial) -> tuple[float, float]:
        ops = [trial.suggest_categorical(f"edge_{i}", ["a", "b", "c"]) for i in range(3)]
        width = trial.suggest_int("width", 1, 4)
        lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        return ops.count("a") - width + abs(lr - 0.01), width + ops.count("c")

    def latency(params: dict) -> float:
        return params["width"] + [params[f"edge_{i}"] for i in range(3)].count("c")

    sampler = DPPSampler(cheap_objectives={1: latency}, n_startup_trials=5, seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Every parameter is modelled: no fallback warning.
        study.optimize(mixed, n_trials=14)
    stages = [_stage(t) for t in study.trials]
    assert stages[0] is None and stages[1:5] == [1] * 4 and stages[5:] == [2] * 9
    for trial in study.trials[5:]:
        assert trial.system_attrs[PARAMS_KEY] == trial.params
        assert "0" in trial.system_attrs[PREDICTION_KEY]


def test_unmodelled_parameters_go_to_the_independent_sampler() -> None:
    def with_lr(trial: optuna.Trial) -> tuple[float, float]:
        value = objective(trial)
        trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        return value

    study = optuna.create_study(
        directions=["minimize", "minimize"],
        sampler=DPPSampler(space=SPACE, cheap_objectives={1: cost}),
    )
    with pytest.warns(UserWarning, match="'lr'.*TPESampler"):
        study.optimize(with_lr, n_trials=3)
    assert all(1e-3 <= t.params["lr"] <= 1e-1 for t in study.trials)


def test_single_objective_cell_study_grows_stages() -> None:
    # One objective: the stage batches are chosen jointly by log noisy expected improvement.
    study = optuna.create_study(sampler=DPPSampler(space=SPACE, k=2, seed=0))
    study.optimize(lambda trial: objective(trial)[0], n_trials=10)
    assert [_stage(t) for t in study.trials] == [1] * 6 + [2] * 2 + [3] * 2
    assert all(len(_layers(t)) == _stage(t) for t in study.trials)
    keys = [_layers(t) for t in study.trials]
    assert len(set(keys)) == len(keys)


def test_after_the_last_stage_the_search_grows_the_true_front() -> None:
    # Three objectives in mixed directions that all follow one quality, so the front of what
    # was trained is its best network; read with the wrong sign it would be the worst one,
    # ``conv1x1``, whose untried neighbours are not all neighbours of the best.
    space = CellSpace(max_layers=2)
    networks = sorted({a.canonical() for n in (1, 2) for a in space.enumerate(n)}, key=str)
    rng = np.random.default_rng(3)
    quality = {a: float(rng.uniform(0.1, 0.5) + 0.4 * (a.n_layers - 1)) for a in networks}
    quality[space.architecture(["conv1x1"])] = 0.05

    def tell(study: optuna.Study, trial: optuna.Trial) -> None:
        q = quality[space.suggest(trial).canonical()]
        study.tell(trial, [1 - q, q, 2 * (1 - q)])

    study = optuna.create_study(
        directions=["minimize", "maximize", "minimize"],
        sampler=DPPSampler(space=space, k=2, seed=0),
    )
    for _ in range(6 + 2):  # Stages 1 and 2 (the last).
        tell(study, study.ask())
    (best,) = study.best_trials  # Optuna's own front.
    tried = {space.from_params(t.params).canonical() for t in study.trials}
    best_arch = space.from_params(best.params)
    front_neighbours = {a.canonical() for a in _stages.neighbours(space, best_arch)} - tried
    for _ in range(2):
        trial = study.ask()
        tell(study, trial)
        assert _stage(study.trials[-1]) == 3
        assert space.from_params(study.trials[-1].params) in front_neighbours


def test_a_network_is_never_trained_twice_under_another_name() -> None:
    # With k as large as stage 2's 18 children, the old planner also trained the six
    # ``X-identity`` cells, which build the stage-1 networks ``X`` again.
    sampler = DPPSampler(space=SPACE, k=18, cheap_objectives={1: cost}, seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=6 + 12 + 2)
    networks = [SPACE.from_params(t.params).canonical() for t in study.trials]
    assert len(set(networks)) == len(networks)
    # No trailing ``identity`` (an inner one, as in ``conv1x1-identity-conv3x3``, is a new
    # network that stage 3 may offer).
    assert all(SPACE.from_params(t.params).layers[-1] != "identity" for t in study.trials)
    # Stage 2 has twelve distinct children; the next two trials are stage 3's.
    assert [_stage(t) for t in study.trials] == [1] * 6 + [2] * 12 + [3] * 2


def _view(stage: int, state: TrialState, layers: list[str], value: float | None) -> TrialView:
    return TrialView(
        number=0,
        state=state,
        params=SPACE.to_params(SPACE.architecture(layers)),
        values=None
        if value is None
        else (value, -cost(SPACE.to_params(SPACE.architecture(layers)))),
        feasible=True,
        stage=stage,
    )


def test_a_worker_that_would_wait_guesses_the_next_stage() -> None:
    planner = CellPlanner(Ranker(selection="ehvi", cheap={1: cost}, signs=(-1.0, -1.0)), k=4)
    rng = np.random.default_rng(0)
    first = [a.layers for a in SPACE.initial()]
    # Stage 1 claimed whole, nothing finished: only random cells, marked as fillers.
    running = [_view(1, TrialState.RUNNING, list(layers), None) for layers in first]
    choices = planner.plan(SPACE, running, rng)
    assert choices and all(c.filler for c in choices)
    # Two results are in: the next stage's best guess comes first, among their children.
    done = [
        _view(1, TrialState.COMPLETE, list(first[0]), -1.0),
        _view(1, TrialState.COMPLETE, list(first[1]), -2.0),
    ]
    choices = planner.plan(SPACE, done + running[2:], rng)
    guesses = [c for c in choices if c.ahead]
    assert guesses and choices[: len(guesses)] == guesses
    assert all(c.stage == 2 and not c.filler for c in guesses)
    assert {SPACE.from_params(c.params).layers[:1] for c in guesses} <= {first[0], first[1]}
    assert all(c.filler for c in choices[len(guesses) :])
    # A trial proposed ahead does not end stage 1: its last members are still handed out.
    ahead = TrialView(1, TrialState.RUNNING, guesses[0].params, None, True, 2, ahead=True)
    choices = planner.plan(SPACE, [*done, *running[2:5], ahead], rng)
    assert choices[0].stage == 1 and SPACE.from_params(choices[0].params).layers == first[5]


def test_conditional_space_never_repeats_a_completed_configuration() -> None:
    # 8 + 6 = 14 configurations: proposals that switch the branch but keep the other branch's
    # parameters used to be realised as a TPE draw, repeating completed configurations.
    def conditional(trial: optuna.Trial) -> tuple[float, float]:
        if trial.suggest_categorical("kind", ["a", "b"]) == "a":
            x = trial.suggest_int("x", 1, 8)
            return x / 8, 1 - x / 10
        c = "pqr".index(trial.suggest_categorical("c", ["p", "q", "r"]))
        d = trial.suggest_categorical("d", ["u", "v"])
        return c / 3 + 0.1 * (d == "u"), 0.5 - 0.1 * c

    for seed in range(2):
        sampler = DPPSampler(n_startup_trials=5, seed=seed)
        study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # The first trial is the TPE's.
            study.optimize(conditional, n_trials=14)
        configurations = [tuple(sorted(t.params.items())) for t in study.trials]
        assert len(set(configurations)) == 14


def test_a_space_other_than_the_objectives_is_refused() -> None:
    sampler = DPPSampler(space=CellSpace(max_layers=2), seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=1)  # the objective suggests from CellSpace(max_layers=3)
    with pytest.raises(ValueError, match="but the objective suggests from"):
        study.optimize(objective, n_trials=1)
