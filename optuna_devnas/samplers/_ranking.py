"""From evaluated trials and candidates to a ranked list: surrogate + acquisition, as tensors.

Use :func:`rank` with the encodings and (signed, maximized) outcomes of the evaluated trials and
the encodings and exact cheap values of the candidates. It fits one GP per expensive objective,
predicts every candidate, screens them by exact expected hypervolume improvement and ranks the
best with BoTorch's ``qLogNoisyExpectedHypervolumeImprovement`` (or DPP-Net's Pareto rule). It
never sees a study: the sampler turns trials into these tensors and the ranks back into trials.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import contextlib
from dataclasses import dataclass, field

import torch

from optuna_devnas.samplers import _acquisition, _surrogate
from optuna_devnas.samplers._pareto import pareto_mask


@dataclass
class Problem:
    """What is known, all tensors in float64, outcomes signed so that larger is better.

    Args:
        train_X:
            Encodings of the completed trials, ``n x d``.
        train_Y:
            Their observed outcomes, ``n x m`` (columns of cheap objectives are ignored).
        train_cheap:
            The cheap objectives computed for them, ``n x c``.
        feasible:
            Which completed trials satisfied their constraints, ``n`` (bool).
        cand_X:
            Encodings of the candidates, ``N x d``.
        cand_cheap:
            Their cheap objectives, ``N x c``.
        cheap:
            The objective index of each cheap column, ``c``.
        pending_X:
            Encodings of running trials, ``p x d`` (counted as evaluated).
        pending_cheap:
            Their cheap objectives, ``p x c``.
        cat_dims:
            Category columns of the encodings.
        num_dims:
            Numerical columns of the encodings.
    """

    train_X: torch.Tensor
    train_Y: torch.Tensor
    train_cheap: torch.Tensor
    feasible: torch.Tensor
    cand_X: torch.Tensor
    cand_cheap: torch.Tensor
    cheap: Sequence[int]
    pending_X: torch.Tensor
    pending_cheap: torch.Tensor
    cat_dims: Sequence[int]
    num_dims: Sequence[int]


@dataclass
class Ranking:
    """A ranked candidate list with the predictions behind it.

    Args:
        order:
            Candidate indices, best first.
        mean:
            Predicted mean of each expensive objective per candidate, ``N x e`` (signed).
        std:
            Predicted standard deviation, ``N x e``.
        expensive:
            The objective index of each column of ``mean``.
        hyperparameters:
            The fitted GP hyperparameters for warm starts: per expensive objective, then per
            expensive objective its floor classifier's (empty without a floor).
    """

    order: list[int]
    mean: torch.Tensor
    std: torch.Tensor
    expensive: list[int]
    hyperparameters: list[dict[str, torch.Tensor]] = field(default_factory=list)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block.

    The matrices here are tiny (hundreds of rows): extra threads only add synchronisation, and
    on a busy machine they made each GP likelihood evaluation several times slower.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def rank(
    problem: Problem,
    q: int,
    *,
    selection: str = "ehvi",
    warm_starts: Sequence[dict[str, torch.Tensor] | None] | None = None,
    refit: bool = True,
    max_exact: int | None = None,
) -> Ranking:
    """Rank ``problem``'s candidates; the first ``q`` are chosen jointly.

    ``warm_starts`` are the hyperparameters of an earlier ranking's GPs; with ``refit=False``
    they are kept as they are instead of refitted. ``max_exact`` caps the candidates the Monte
    Carlo acquisition of a joint batch (``q > 1``) scores after the closed-form screen.
    Default ``_acquisition.MAX_EXACT_CANDIDATES``.
    """
    if max_exact is None:
        max_exact = _acquisition.MAX_EXACT_CANDIDATES
    with single_thread():
        return _rank(problem, q, selection, warm_starts, refit, max_exact)


def _rank(
    problem: Problem,
    q: int,
    selection: str,
    warm_starts: Sequence[dict[str, torch.Tensor] | None] | None,
    refit: bool,
    max_exact: int,
) -> Ranking:
    p = problem
    m = p.train_Y.shape[1]
    cheap = list(p.cheap)
    expensive = [i for i in range(m) if i not in cheap]
    d = p.train_X.shape[1]
    # Inputs are [encoding | cheap values scaled to [0, 1] | cheap values as features]; the
    # deterministic models read the middle columns, the GPs' kernels the others.
    low, span = min_max(torch.cat([p.train_cheap, p.cand_cheap, p.pending_cheap]))
    # The GPs also read each cheap objective as a feature, on a log scale of the distance to
    # its best value (``_CostScale``), through an additive kernel of its own: a network's cost
    # says much about what it computes, and it is known exactly for every candidate.
    costs = _CostScale(torch.cat([p.train_cheap, p.cand_cheap, p.pending_cheap]))
    train_Z = torch.cat([p.train_X, (p.train_cheap - low) / span, costs(p.train_cheap)], dim=1)
    cand_Z = torch.cat([p.cand_X, (p.cand_cheap - low) / span, costs(p.cand_cheap)], dim=1)
    pending_Z = torch.cat(
        [p.pending_X, (p.pending_cheap - low) / span, costs(p.pending_cheap)], dim=1
    )
    cost_dims = [d + len(cheap) + j for j in range(len(cheap))]
    n_cand = len(cand_Z)

    # Expensive objectives are modelled, and compared, on a log scale of the distance to the
    # best value seen (see ``Warp``).
    train_Y = p.train_Y.clone()
    e = len(expensive)
    gps, means, stds, warps = [], [], [], []
    hypers: list[dict[str, torch.Tensor]] = [{} for _ in range(2 * e)]
    floor_probability = torch.zeros(n_cand, m, dtype=torch.float64)
    floor_value = torch.zeros(m, dtype=torch.float64)

    def warm(index: int) -> dict[str, torch.Tensor] | None:
        if warm_starts is None or index >= len(warm_starts):
            return None
        return warm_starts[index] or None

    for column, objective in enumerate(expensive):
        y = p.train_Y[:, objective]
        # Trials on the floor (see ``floor_of``) are left out of the GP, which models the
        # networks that trained; a second GP regresses the floor indicator on all trials.
        on_floor = floor_of(y)
        trained = ~on_floor if on_floor is not None else torch.ones_like(y, dtype=torch.bool)
        warp = Warp(y[trained])
        train_Y[:, objective] = warp(y)
        gp = _surrogate.fit_gp(
            train_Z[trained],
            train_Y[trained, objective],
            p.cat_dims,
            p.num_dims,
            cost_dims=cost_dims,
            warm_start=warm(column),
            refit=refit,
        )
        mean, std = _surrogate.predict(gp, cand_Z)
        hypers[column] = _surrogate.hyperparameters(gp)
        if on_floor is not None:
            # With exact costs the floor is read from them alone (see ``floor_of``).
            classifier = _surrogate.fit_gp(
                train_Z,
                on_floor.to(torch.float64),
                [] if cost_dims else p.cat_dims,
                [] if cost_dims else p.num_dims,
                cost_dims=cost_dims,
                warm_start=warm(e + column),
                refit=refit,
            )
            floor_probability[:, objective] = _surrogate.predict(classifier, cand_Z)[0].clamp(
                0.0, 1.0
            )
            floor_value[objective] = float(warp(y.min().reshape(1))[0])
            hypers[e + column] = _surrogate.hyperparameters(classifier)
        gps.append(gp)
        means.append(mean)
        stds.append(std)
        warps.append(warp)
    mean = torch.stack(means, dim=1) if means else torch.zeros(n_cand, 0, dtype=torch.float64)
    std = torch.stack(stds, dim=1) if stds else torch.zeros(n_cand, 0, dtype=torch.float64)
    floor = _acquisition.Floor(floor_probability, floor_value)
    # Predictions in the objectives' own units, for the record: the mixture's mean and
    # standard deviation where there is a floor.
    own_mean, own_std = mean.clone(), std.clone()
    for column, (objective, warp) in enumerate(zip(expensive, warps, strict=True)):
        gm, gs = warp.inverse(mean[:, column], std[:, column])
        q_floor = floor_probability[:, objective]
        worst = p.train_Y[:, objective].min()
        own_mean[:, column] = (1 - q_floor) * gm + q_floor * worst
        second = (1 - q_floor) * (gs**2 + gm**2) + q_floor * worst**2
        own_std[:, column] = (second - own_mean[:, column] ** 2).clamp_min(0).sqrt()
    result = Ranking(
        order=[], mean=own_mean, std=own_std, expensive=expensive, hyperparameters=hypers
    )
    if n_cand == 0:
        return result

    # Every objective per candidate: predicted for expensive ones, exact for cheap ones.
    full_mean = torch.zeros(n_cand, m, dtype=torch.float64)
    full_std = torch.zeros(n_cand, m, dtype=torch.float64)
    observed = train_Y.clone()
    for column, objective in enumerate(expensive):
        full_mean[:, objective] = mean[:, column]
        full_std[:, objective] = std[:, column]
    for column, objective in enumerate(cheap):
        full_mean[:, objective] = (p.cand_cheap[:, column] - low[column]) / span[column]
        observed[:, objective] = (p.train_cheap[:, column] - low[column]) / span[column]
    feasible = observed[p.feasible.bool()]
    if q == 1 and len(pending_Z):
        # Running trials count as evaluated at their predicted mean ("kriging believer"), so
        # parallel workers spread out instead of all chasing the same gain.
        believed = torch.zeros(len(pending_Z), m, dtype=torch.float64)
        for column, objective in enumerate(expensive):
            believed[:, objective] = _surrogate.predict(gps[column], pending_Z)[0]
        for column, objective in enumerate(cheap):
            believed[:, objective] = pending_Z[:, d + column]
        feasible = torch.cat([feasible, believed])

    # The exact expected (hypervolume) improvement of each candidate alone, from independent
    # Gaussian marginals and exact cheap values. For one proposal this is the acquisition
    # itself; the Monte Carlo acquisitions below are for joint batches, where candidates
    # interact, and see only the best ``max_exact`` by this score.
    if m == 1:
        best = float(feasible[:, 0].max()) if len(feasible) else float(observed[:, 0].min())
        screen = _acquisition.expected_improvement(
            full_mean[:, 0], full_std[:, 0], best, floor_probability[:, 0]
        )
        if not expensive or q == 1:
            result.order = _by(screen + full_mean[:, 0] * 1e-12)
            return result
        result.order = _acquisition.rank_single(
            gps[0], cand_Z, train_Z, q, pending=pending_Z, screen=screen, max_exact=max_exact
        )
        return result

    ref_point = _reference_point(observed, full_mean)
    front = feasible[pareto_mask(feasible, deduplicate=True)] if len(feasible) else feasible
    screen = _acquisition.expected_hvi(full_mean, full_std, front, ref_point, floor)
    if selection == "pareto":
        # Within a front DPP-Net leaves the choice open: take the largest expected gain first.
        for members in _acquisition.pareto_fronts(full_mean):
            result.order.extend(sorted(members, key=lambda i: -float(screen[i])))
        return result
    if not expensive or q == 1:
        result.order = _by(screen)
        return result
    model = _acquisition.joint_model(gps, _kinds(m, cheap, expensive), d)
    result.order = _acquisition.rank_by_ehvi(
        model,
        cand_Z,
        train_Z[p.feasible.bool()] if bool(p.feasible.any()) else train_Z,
        ref_point,
        q,
        pending=pending_Z,
        screen=screen,
        max_exact=max_exact,
    )
    return result


class Warp:
    """``w = -log(best - y + c * span)``: a monotone warp of a maximized objective.

    Accuracy-like objectives have a long tail of bad values (untrainable networks at chance
    level) while the differences that decide the Pareto front are tiny at the top. Modelling
    the log of the distance to the best value seen (plus a margin ``c`` of the observed span,
    so improvements stay finite) spreads the top and shrinks the tail. The acquisition works
    on the warped values: the warp preserves dominance and weighs gains near the best more.
    """

    MARGIN = 0.02

    def __init__(self, y: torch.Tensor) -> None:
        self.best = float(y.max())
        span = float(y.max() - y.min())
        self.offset = self.MARGIN * span if span > 0 else 1.0

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        return -torch.log((self.best - y).clamp_min(0) + self.offset)

    def inverse(self, mean: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Median and (first-order) standard deviation in the original units."""
        distance = torch.exp(-mean)
        return self.best + self.offset - distance, distance * std


FLOOR_MIN_TRIALS = 2
"""Trials that must share the worst value before it counts as a floor."""

FLOOR_MIN_TRAINED = 3
"""Trials off the floor needed to model the rest."""


def floor_of(y: torch.Tensor) -> torch.Tensor | None:
    """Which of the maximized values ``y`` sit on a floor, or ``None`` if there is none.

    A floor is the worst value shared exactly by at least ``FLOOR_MIN_TRIALS`` trials: a
    network that does not train predicts one class and scores chance level, the same number
    for every such network. Modelled by one GP with the rest, these trials are outliers that
    inflate its variance everywhere; modelled apart, they are a classifier's business (a GP
    regression of the floor indicator; with cheap objectives it reads only their cost features,
    since the cheapest networks are the ones that do not train), and the GP sees the networks
    that trained.
    """
    if len(y) == 0:
        return None
    worst = y.min()
    on_floor = y <= worst
    if int(on_floor.sum()) < FLOOR_MIN_TRIALS or int((~on_floor).sum()) < FLOOR_MIN_TRAINED:
        return None
    return on_floor


def _kinds(m: int, cheap: list[int], expensive: list[int]) -> list[tuple[str, int]]:
    return [
        ("cheap", cheap.index(i)) if i in cheap else ("gp", expensive.index(i)) for i in range(m)
    ]


def min_max(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per column of ``values`` (``n x k``): the minimum and the span (1 where it is 0)."""
    if values.shape[1] == 0 or len(values) == 0:
        zeros = torch.zeros(values.shape[1], dtype=torch.float64)
        return zeros, torch.ones_like(zeros)
    low = values.min(dim=0).values
    span = values.max(dim=0).values - low
    return low, torch.where(span > 0, span, torch.ones_like(span))


class _CostScale:
    """Maps each column to ``log(best - value + margin)`` scaled to ``[0, 1]`` over ``values``.

    The log of the distance to the best value, as in :class:`Warp`, with a margin of 0.1% of
    the span: resolution where the front's cheap end is (a broken cell at 0.01 ms and an
    identity cell at 2.5 ms are far apart, not 3% of a linear latency axis).
    """

    MARGIN = 0.001

    def __init__(self, values: torch.Tensor) -> None:
        if len(values) == 0:
            values = torch.zeros(1, values.shape[1], dtype=torch.float64)
        self.best = values.max(dim=0).values
        span = self.best - values.min(dim=0).values
        self.offset = torch.where(span > 0, self.MARGIN * span, torch.ones_like(span))
        logs = self._log(values)
        self.low = logs.min(dim=0).values
        high = logs.max(dim=0).values
        self.span = torch.where(high > self.low, high - self.low, torch.ones_like(high))

    def _log(self, values: torch.Tensor) -> torch.Tensor:
        return torch.log((self.best - values).clamp_min(0) + self.offset)

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        return (self._log(values) - self.low) / self.span


def _reference_point(observed: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """Slightly worse than the worst value seen or predicted, per objective (maximized)."""
    values = torch.cat([observed, predicted])
    low = values.min(dim=0).values
    high = values.max(dim=0).values
    span = torch.where(high > low, high - low, torch.ones_like(high))
    return low - 0.1 * span


def _by(score: torch.Tensor) -> list[int]:
    return [int(i) for i in torch.argsort(score, descending=True, stable=True)]
