"""The sampler's tensor-in/tensor-out parts, without a study."""

from __future__ import annotations

from collections.abc import Sequence

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
import pytest
import torch

from optuna_devnas.samplers import _acquisition, _candidates, _ranking, _stages, _surrogate
from optuna_devnas.samplers._cells import cell_encoding
from optuna_devnas.samplers._encoding import ParamEncoding
from optuna_devnas.samplers._generic import GenericPlanner, by_contribution
from optuna_devnas.samplers._pareto import pareto_mask
from optuna_devnas.samplers._planning import Ranker, TrialView, needs_refit
from optuna_devnas.spaces import CellSpace

OPS = ["none", "skip", "conv"]


def _problem(
    encoding: ParamEncoding,
    train_X: torch.Tensor,
    train_Y: torch.Tensor,
    cand_X: torch.Tensor,
    *,
    train_cheap: torch.Tensor | None = None,
    cand_cheap: torch.Tensor | None = None,
    cheap: Sequence[int] = (),
) -> _ranking.Problem:
    """A ranking problem with every trial feasible, nothing pending and, by default, no cheap
    objectives."""

    def none(n: int) -> torch.Tensor:
        return torch.zeros(n, 0, dtype=torch.float64)

    return _ranking.Problem(
        train_X=train_X,
        train_Y=train_Y,
        train_cheap=none(len(train_X)) if train_cheap is None else train_cheap,
        feasible=torch.ones(len(train_X), dtype=torch.bool),
        cand_X=cand_X,
        cand_cheap=none(len(cand_X)) if cand_cheap is None else cand_cheap,
        cheap=list(cheap),
        pending_X=torch.zeros(0, encoding.dim, dtype=torch.float64),
        pending_cheap=torch.zeros(0, len(cheap), dtype=torch.float64),
        cat_dims=encoding.cat_dims,
        num_dims=encoding.num_dims,
    )


def test_encoding_has_absent_tokens_and_operation_counts() -> None:
    dists = {
        "a": CategoricalDistribution(OPS),
        "b": CategoricalDistribution(OPS),
        "lr": FloatDistribution(1e-3, 1e-1, log=True),
    }
    encoding = ParamEncoding(dists)
    X = encoding.encode([{"a": "conv", "b": "conv", "lr": 1e-2}, {"a": "skip"}])
    assert encoding.cat_dims == [0, 1] and encoding.num_dims == [2, 3, 4, 5]
    assert X[0].tolist() == pytest.approx([2, 2, 0.5, 0, 0, 1])
    assert X[1].tolist() == pytest.approx([1, 3, -1, 0, 0.5, 0])  # b absent, lr absent


def test_cell_encoding_reads_identity_as_absent() -> None:
    space = CellSpace(max_layers=3)
    encoding = cell_encoding(space)
    parent = space.to_params(space.architecture(["conv3x3"]))
    child = space.to_params(space.architecture(["conv3x3", "identity"]))
    other = space.to_params(space.architecture(["conv3x3", "bn"]))
    X = encoding.encode([parent, child, other])
    assert torch.equal(X[0], X[1]) and not torch.equal(X[0], X[2])


def test_stage_candidates_grow_usable_parents_only() -> None:
    space = CellSpace(max_layers=2)
    good, bad = space.initial()[:2]
    outcomes = [
        _stages.Outcome(good, 1, (1.0, 1.0), True),
        _stages.Outcome(bad, 1, (2.0, 0.5), False),
    ]
    assert _stages.stage_candidates(space, 1, []) == list(space.initial())
    # ``good-identity`` builds ``good``'s network: it is offered as ``good`` itself, which the
    # caller finds evaluated.
    children = _stages.stage_candidates(space, 2, outcomes)
    assert children == [good.children()[0], good.children()[1], good]
    after = _stages.stage_candidates(space, 3, outcomes)  # After the last stage.
    assert set(after) == {a.canonical() for a in _stages.neighbours(space, good)}
    assert len(after) == 3 + 5  # Three appended normalizations, five other convolutions.


def test_stage_candidates_keep_untrained_shorter_children_and_grow_through_identity() -> None:
    space = CellSpace(max_layers=4)
    first = list(space.initial())
    parent = space.architecture(["conv1x1", "bn_relu"])
    outcomes = [_stages.Outcome(a, 1, (1.0, 1.0), True) for a in first]
    outcomes.append(_stages.Outcome(parent, 2, (2.0, 0.5), True))
    candidates = _stages.stage_candidates(space, 3, outcomes)
    # The stage's own children come first, in order.
    assert candidates[: len(parent.children())] == list(parent.children())
    # A two-layer child that stage 2 left untrained stays a candidate of stage 3.
    assert space.architecture(["conv3x3", "bn"]) in candidates
    # ``conv1x1-identity`` builds the trained ``conv1x1``: its children are offered too.
    assert space.architecture(["conv1x1", "identity", "conv3x3"]) in candidates
    # Nothing longer than the stage, and every candidate is canonical.
    assert max(a.n_layers for a in candidates) == 3
    assert all(a == a.canonical() for a in candidates)
    # Without usable cells of two layers the stage grows the Pareto set instead.
    fallback = _stages.stage_candidates(space, 3, outcomes[:-1])
    front = _stages.pareto_set(outcomes[:-1])
    assert set(fallback) == {n.canonical() for a in front for n in _stages.neighbours(space, a)}


def test_pareto_set_reads_values_as_maximized() -> None:
    # One sign convention (``_pareto``): A is larger in every objective, so it alone is the
    # front; read as minimized values, B and C would be (the front-direction bug).
    space = CellSpace(max_layers=2)
    a, b, c = space.initial()[:3]
    outcomes = [
        _stages.Outcome(b, 1, (1.0, 2.0, 1.0), True),
        _stages.Outcome(a, 1, (3.0, 3.0, 3.0), True),
        _stages.Outcome(c, 1, (2.0, 1.0, 2.0), True),
    ]
    assert _stages.pareto_set(outcomes) == [a]
    assert pareto_mask([(1.0, 2.0), (3.0, 3.0), (3.0, 3.0)]).tolist() == [False, True, True]
    assert pareto_mask(torch.zeros(0, 2)).tolist() == []


def test_expected_hvi_matches_monte_carlo() -> None:
    torch.manual_seed(0)
    front = torch.tensor([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    ref = torch.tensor([0.0, 0.0])
    mean = torch.tensor([[2.5, 2.5], [1.0, 1.0], [3.5, 0.5]], dtype=torch.float64)
    std = torch.tensor([[0.5, 0.0], [0.3, 0.3], [1.0, 0.0]], dtype=torch.float64)
    exact = _acquisition.expected_hvi(mean, std, front.double(), ref.double())
    samples = mean + std * torch.randn(200_000, *mean.shape, dtype=torch.float64)
    from botorch.utils.multi_objective.box_decompositions.non_dominated import (
        FastNondominatedPartitioning,
    )

    lower, upper = FastNondominatedPartitioning(
        ref.double(), front.double()
    ).get_hypercell_bounds()
    gain = (torch.minimum(samples.unsqueeze(-2), upper) - lower).clamp_min(0).prod(-1).sum(-1)
    assert exact.tolist() == pytest.approx(gain.mean(0).tolist(), abs=0.01)
    assert float(exact[1]) < 1e-4  # Dominated but for a far tail.


def test_pareto_fronts_are_layers_of_non_domination() -> None:
    mean = torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.5, 0.5], [0.0, 0.0]], dtype=torch.float64)
    assert _acquisition.pareto_fronts(mean) == [[0, 1], [2], [3]]


def test_surrogate_predictions_match_botorch_posterior() -> None:
    torch.manual_seed(0)
    X = torch.cat([torch.randint(0, 3, (12, 2)).double(), torch.rand(12, 1).double()], dim=1)
    y = X[:, 0] - X[:, 2] + 0.1 * torch.randn(12, dtype=torch.float64)
    gp = _surrogate.fit_gp(X, y, [0, 1], [2])
    mean, std = _surrogate.predict(gp, X[:5])
    posterior = gp.posterior(X[:5].unsqueeze(-2))
    assert mean.tolist() == pytest.approx(posterior.mean.reshape(-1).tolist(), abs=1e-6)
    assert std.tolist() == pytest.approx(posterior.variance.sqrt().reshape(-1).tolist(), abs=1e-6)
    warm = _surrogate.fit_gp(X, y, [0, 1], [2], warm_start=_surrogate.hyperparameters(gp))
    assert _surrogate.predict(warm, X[:5])[0].tolist() == pytest.approx(mean.tolist(), abs=0.05)


def test_a_gp_kept_without_refit_conditions_on_new_trials() -> None:
    torch.manual_seed(0)
    X = torch.cat([torch.randint(0, 3, (14, 2)).double(), torch.rand(14, 1).double()], dim=1)
    y = X[:, 0] - X[:, 2] + 0.1 * torch.randn(14, dtype=torch.float64)
    fitted = _surrogate.hyperparameters(_surrogate.fit_gp(X[:12], y[:12], [0, 1], [2]))
    kept = _surrogate.fit_gp(X, y, [0, 1], [2], warm_start=fitted, refit=False)
    assert all(torch.equal(kept.state_dict()[name], value) for name, value in fitted.items())
    assert len(kept.train_targets) == 14  # the hyperparameters of 12 trials, the data of 14
    refitted = _surrogate.fit_gp(X, y, [0, 1], [2], warm_start=fitted)
    assert any(not torch.equal(refitted.state_dict()[n], v) for n, v in fitted.items())
    assert needs_refit(150, 149) and not needs_refit(520, 500) and needs_refit(525, 500)


def test_warp_is_monotone_and_inverts() -> None:
    y = torch.tensor([-90.0, -10.0, -6.0, -5.6], dtype=torch.float64)
    warp = _ranking.Warp(y)
    w = warp(y)
    assert torch.all(w[1:] > w[:-1])
    back, _ = warp.inverse(w, torch.zeros_like(w))
    assert back.tolist() == pytest.approx(y.tolist())


def test_rank_prefers_the_candidate_a_simple_model_predicts_best() -> None:
    dists = {f"e{i}": CategoricalDistribution(OPS) for i in range(3)}
    encoding = ParamEncoding(dists)
    every = _candidates.enumerate_all(sorted(dists), dists)
    score = [sum(OPS.index(p[n]) for n in dists) for p in every]  # "conv" everywhere is best
    train = [i for i in range(len(every)) if score[i] <= 3][:10]
    problem = _problem(
        encoding,
        encoding.encode([every[i] for i in train]),
        torch.tensor([[float(score[i])] for i in train], dtype=torch.float64),
        encoding.encode(every),
    )
    ranking = _ranking.rank(problem, q=1)
    assert score[ranking.order[0]] > max(score[i] for i in train)


def test_int_values_and_draws_stay_in_range() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    dist = IntDistribution(0, 100, step=5)
    assert _candidates.values_of(IntDistribution(1, 4)) == [1, 2, 3, 4]
    assert _candidates.values_of(dist) is None
    draws = [_candidates.draw(dist, rng) for _ in range(50)]
    assert all(isinstance(d, int) and 0 <= d <= 100 and d % 5 == 0 for d in draws)


def test_cost_scale_spreads_the_cheap_end() -> None:
    # Signed so that larger is better, as the ranking sees them: -latency.
    latency = torch.tensor([[0.01], [0.02], [2.5], [40.0], [90.0]], dtype=torch.float64)
    scale = _ranking._CostScale(-latency)
    z = scale(-latency)[:, 0]
    assert float(z.min()) == pytest.approx(0.0) and float(z.max()) == pytest.approx(1.0)
    assert torch.all(z[1:] > z[:-1])
    # 2.5 ms sits far from 0.01 ms (a linear axis would put them 3% of the span apart).
    assert float(z[2] - z[0]) > 0.3


def test_cost_trend_holds_below_the_cheapest_trial() -> None:
    # Value rises with cost over [0.5, 1]. Inside the data the trend carries the prediction;
    # below the cheapest trial it stays at that trial's level instead of extrapolating (a
    # constant prior mean would pull it back to the average, about 2.25).
    X = torch.linspace(0.5, 1.0, 8, dtype=torch.float64).reshape(-1, 1)
    y = 3.0 * X[:, 0] + 0.01 * torch.sin(17.0 * X[:, 0])
    gp = _surrogate.fit_gp(X, y, [], [], cost_dims=[0])
    probe = torch.tensor([[0.0], [0.5], [0.75]], dtype=torch.float64)
    mean, _ = _surrogate.predict(gp, probe)
    assert mean[2] == pytest.approx(2.25, abs=0.1)
    assert mean[0] == pytest.approx(float(mean[1]), abs=0.3)  # flat below 0.5, near y(0.5)
    assert mean[0] < 2.0  # not the average network
    # The lowest cost is the data's, not a warm start's.
    warm = _surrogate.fit_gp(
        X[4:], y[4:], [], [], cost_dims=[0], warm_start=_surrogate.hyperparameters(gp)
    )
    assert float(warm.mean_module.lowest) == pytest.approx(float(X[4, 0]))


def test_gp_reads_cheap_objectives_as_features() -> None:
    # Every trial has the same parameters: only the exact cost can tell them apart, and the
    # expensive objective is broken (-90) below a cost threshold.
    dists = {"e0": CategoricalDistribution(OPS)}
    encoding = ParamEncoding(dists)
    params = [{"e0": OPS[0]}] * 12
    cost = torch.linspace(0.0, 10.0, 12, dtype=torch.float64).reshape(-1, 1)
    accuracy = torch.where(cost[:, 0] < 3.0, -90.0, -10.0 + cost[:, 0] * 0.1)
    cand_cost = torch.tensor([[1.5], [8.5]], dtype=torch.float64)
    problem = _problem(
        encoding,
        encoding.encode(params),
        torch.stack([accuracy, -cost[:, 0]], dim=1),
        encoding.encode(params[:2]),
        train_cheap=-cost,
        cand_cheap=-cand_cost,
        cheap=[1],
    )
    ranking = _ranking.rank(problem, q=1)
    low, high = ranking.mean[:, 0].tolist()
    # Without the cost features both predictions would be equal (equal encodings).
    assert low < -50.0
    assert high == pytest.approx(-9.2, abs=2.0)


def test_a_pareto_member_at_the_worst_expensive_value_is_no_parent() -> None:
    ranker = Ranker(
        selection="ehvi", cheap={1: lambda params: float(params["x"])}, signs=[-1.0, -1.0]
    )
    planner = GenericPlanner(ranker, n_startup_trials=2, max_candidates=16)
    points = [(90.0, 0.01), (12.0, 2.5), (6.0, 40.0), (20.0, 45.0)]  # (error, latency)
    views = [
        TrialView(i, TrialState.COMPLETE, {"x": lat}, (-err, -lat), True, 0)
        for i, (err, lat) in enumerate(points)
    ]
    parents = planner._parents(views)
    assert [v.number for v in parents] == [1, 2]
    # With nothing but floor members on the front, they stay parents.
    assert [v.number for v in planner._parents(views[:1])] == [0]


def test_floor_is_the_worst_value_shared_by_several_trials() -> None:
    def floor(values: list[float]) -> list[bool] | None:
        mask = _ranking.floor_of(torch.tensor(values, dtype=torch.float64))
        return None if mask is None else mask.tolist()

    assert floor([-90.0, -10.0, -5.0, -3.0]) is None  # A worst value, but no plateau.
    assert floor([-90.0, -90.0, -10.0]) is None  # Too few trained networks to model.
    assert floor([-90.0, -10.0, -90.0, -5.0, -3.0]) == [True, False, True, False, False]


def test_expected_hvi_mixes_the_floor_in_exactly() -> None:
    front = torch.tensor([[-1.0, -3.0], [-2.0, -2.0]], dtype=torch.float64)
    ref = torch.tensor([-5.0, -5.0], dtype=torch.float64)
    mean = torch.tensor([[-1.5, -1.0], [-0.5, -4.0]], dtype=torch.float64)
    std = torch.tensor([[0.7, 0.0], [0.4, 0.0]], dtype=torch.float64)
    value = torch.tensor([-4.0, 0.0], dtype=torch.float64)

    def ehvi(p: float) -> torch.Tensor:
        probability = torch.tensor([[p, 0.0], [p, 0.0]], dtype=torch.float64)
        floor = _acquisition.Floor(probability, value)
        return _acquisition.expected_hvi(mean, std, front, ref, floor)

    at_floor = mean.clone()
    at_floor[:, 0] = value[0]
    exact = _acquisition.expected_hvi(at_floor, torch.zeros_like(std), front, ref)
    assert torch.allclose(ehvi(0.0), _acquisition.expected_hvi(mean, std, front, ref))
    assert torch.allclose(ehvi(1.0), exact)
    assert torch.allclose(ehvi(0.3), 0.7 * ehvi(0.0) + 0.3 * exact)
    assert float(exact[0]) > 0 and float(ehvi(0.3)[0]) < float(ehvi(0.0)[0])


def test_floor_trials_are_modelled_apart() -> None:
    # Cells whose first edge is "none" never train (-90, chance level); the others score
    # -10 plus half a point per convolution.
    dists = {f"e{i}": CategoricalDistribution(OPS) for i in range(3)}
    encoding = ParamEncoding(dists)
    cells = [
        ("none", "skip", "none"),
        ("none", "conv", "skip"),
        ("none", "none", "conv"),
        ("skip", "skip", "skip"),
        ("skip", "conv", "none"),
        ("conv", "none", "skip"),
        ("conv", "skip", "conv"),
        ("skip", "none", "none"),
        ("conv", "conv", "skip"),
    ]

    def accuracy(cell: tuple[str, ...]) -> float:
        return -90.0 if cell[0] == "none" else -10.0 + 0.5 * cell.count("conv")

    candidates = [("none", "conv", "conv"), ("conv", "conv", "conv")]
    params = [dict(zip(dists, cell, strict=True)) for cell in cells + candidates]
    X = encoding.encode(params)
    problem = _problem(
        encoding,
        X[: len(cells)],
        torch.tensor([[accuracy(c)] for c in cells], dtype=torch.float64),
        X[len(cells) :],
    )
    ranking = _ranking.rank(problem, q=1)
    broken, good = ranking.mean[:, 0].tolist()
    assert ranking.hyperparameters[1], "no floor classifier was fitted"
    assert broken < -70.0
    assert -11.0 < good < -8.0  # The warp predicts no better than the best seen (-9).
    assert ranking.order == [1, 0]


def test_with_exact_costs_the_floor_is_read_from_cost() -> None:
    # Cells without a convolution never train and are the cheapest; a cell's cost is exact.
    # An unseen cell of pools, as cheap as the broken ones, is predicted broken although no
    # trial had a pool: the floor is read from cost, not from resemblance.
    ops = ["none", "skip", "pool", "conv"]
    dists = {f"e{i}": CategoricalDistribution(ops) for i in range(4)}
    encoding = ParamEncoding(dists)
    unit = {"none": 0.0, "skip": 0.1, "pool": 0.1, "conv": 5.0}

    def cost(cell: tuple[str, ...]) -> float:
        return 0.01 + sum(unit[op] for op in cell)

    def accuracy(cell: tuple[str, ...]) -> float:
        return -90.0 if "conv" not in cell else -10.0 + 0.5 * cell.count("conv")

    cells = [
        ("none", "none", "none", "none"),
        ("skip", "none", "none", "none"),
        ("none", "skip", "skip", "none"),
        ("skip", "skip", "skip", "skip"),
        ("conv", "none", "none", "none"),
        ("skip", "conv", "none", "skip"),
        ("conv", "conv", "skip", "none"),
        ("none", "conv", "conv", "conv"),
        ("conv", "skip", "conv", "skip"),
    ]
    candidates = [("pool", "pool", "none", "pool"), ("conv", "pool", "conv", "conv")]
    params = [dict(zip(dists, cell, strict=True)) for cell in cells + candidates]
    X = encoding.encode(params)
    costs = torch.tensor([[-cost(c)] for c in cells + candidates], dtype=torch.float64)
    problem = _problem(
        encoding,
        X[: len(cells)],
        torch.tensor([[accuracy(c), -cost(c)] for c in cells], dtype=torch.float64),
        X[len(cells) :],
        train_cheap=costs[: len(cells)],
        cand_cheap=costs[len(cells) :],
        cheap=[1],
    )
    ranking = _ranking.rank(problem, q=1)
    broken, good = ranking.mean[:, 0].tolist()
    assert broken < -85.0 and float(ranking.std[0, 0]) < 1.0  # Sure it is broken.
    assert good > -12.0
    assert ranking.order[0] == 1  # Without the floor, the broken cell's doubt won.


def test_pareto_members_by_exclusive_hypervolume_contribution() -> None:
    # Already in [0, 1] (maximized), reference point (-0.1, -0.1). Exclusive boxes by hand:
    # a = (1, 0): 0.1 x 0.1 = 0.01; b = (0.9, 0.2): 0.9 x 0.2 = 0.18; c = (0, 1): 0.1 x 0.8.
    a, b, c = (
        TrialView(i, TrialState.COMPLETE, {"x": i}, values, True, 0)
        for i, values in enumerate([(1.0, 0.0), (0.9, 0.2), (0.0, 1.0)])
    )
    assert [v.number for v in by_contribution([a, b, c], [a, b, c])] == [1, 2, 0]
    # One objective: the order given is kept.
    single = [TrialView(i, TrialState.COMPLETE, {"x": i}, (float(i),), True, 0) for i in range(3)]
    assert by_contribution(single, single) == single
