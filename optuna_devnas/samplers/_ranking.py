"""From evaluated trials and candidates to a ranked list: surrogate + acquisition, as tensors.

Use :func:`rank` with the encodings and (signed, maximized) outcomes of the evaluated trials and
the encodings and exact cheap values of the candidates. It fits one GP per expensive objective,
predicts every candidate, screens them by exact expected hypervolume improvement and ranks the
best with BoTorch's ``qLogNoisyExpectedHypervolumeImprovement`` (or DPP-Net's Pareto rule). It
never sees a study: the sampler turns trials into these tensors and the ranks back into trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import torch

from optuna_devnas._device import intra_op_threads
from optuna_devnas._imports import LazyImport
from optuna_devnas.samplers._pareto import pareto_mask

if TYPE_CHECKING:
    from botorch.models import SingleTaskGP
    import botorch.utils.multi_objective

    from optuna_devnas.samplers import _acquisition, _surrogate
else:  # BoTorch and the GP modules load at the first ranking, not with the sampler.
    botorch = LazyImport("botorch")
    _acquisition = LazyImport("optuna_devnas.samplers._acquisition")
    _surrogate = LazyImport("optuna_devnas.samplers._surrogate")

Selection = Literal["ehvi", "pareto"]
"""How candidates are chosen: expected hypervolume improvement, or DPP-Net's Pareto rule."""


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


def rank(
    problem: Problem,
    q: int,
    *,
    selection: Selection = "ehvi",
    warm_starts: Sequence[dict[str, torch.Tensor] | None] | None = None,
    refit: bool = True,
) -> Ranking:
    """Rank ``problem``'s candidates; the first ``q`` are chosen jointly.

    Four steps: the GPs' inputs (:func:`features`), one GP per expensive objective and its
    floor classifier (:func:`fit_models`), the candidates' predicted outcomes
    (:func:`predict`), and the order (:func:`select`). ``warm_starts`` are the
    hyperparameters of an earlier ranking's GPs; with ``refit=False`` they are kept as they
    are instead of refitted.
    """
    # The matrices are tiny (hundreds of rows): extra threads only add synchronisation.
    with intra_op_threads(1):
        inputs = features(problem)
        models = fit_models(problem, inputs, warm_starts, refit)
        prediction = predict(problem, inputs, models)
        result = Ranking(
            order=[],
            mean=prediction.own_mean,
            std=prediction.own_std,
            expensive=models.expensive,
            hyperparameters=models.hyperparameters,
        )
        if len(inputs.candidates):
            result.order = select(problem, inputs, models, prediction, q, selection)
        return result


@dataclass
class Inputs:
    """The GPs' inputs, ``[encoding | cheap values scaled to [0, 1] | cost features]``.

    The deterministic models of the cheap objectives read the middle columns, the GPs'
    kernels the others: each cheap objective is also a GP feature, on a log scale of the
    distance to its best value (:class:`_CostScale`), since a network's cost says much about
    what it computes and it is known exactly for every candidate.

    Args:
        train:
            Completed trials, ``n x D``.
        candidates:
            Candidates, ``N x D``.
        pending:
            Running trials, ``p x D``.
        width:
            Columns of the encoding (the scaled cheap values start there).
        cost_dims:
            Columns of the cost features.
    """

    train: torch.Tensor
    candidates: torch.Tensor
    pending: torch.Tensor
    width: int
    cost_dims: list[int]

    def scaled_cheap(self, rows: torch.Tensor) -> torch.Tensor:
        """The scaled cheap columns of ``rows`` (``k x D``), ``k x c``."""
        return rows[:, self.width : self.width + len(self.cost_dims)]


def features(problem: Problem) -> Inputs:
    """The GP inputs of the trials, candidates and running trials of ``problem``."""
    p = problem
    every = torch.cat([p.train_cheap, p.cand_cheap, p.pending_cheap])
    bounds = column_bounds(every)
    costs = _CostScale(every)
    width = p.train_X.shape[1]

    def rows(X: torch.Tensor, cheap: torch.Tensor) -> torch.Tensor:
        scaled = botorch.utils.transforms.normalize(cheap, bounds)
        return torch.cat([X, scaled, costs(cheap)], dim=1)

    return Inputs(
        train=rows(p.train_X, p.train_cheap),
        candidates=rows(p.cand_X, p.cand_cheap),
        pending=rows(p.pending_X, p.pending_cheap),
        width=width,
        cost_dims=[width + len(p.cheap) + j for j in range(len(p.cheap))],
    )


@dataclass
class Models:
    """The fitted models of the expensive objectives.

    Args:
        expensive:
            The objective index of each model, ``e``.
        gps:
            Per expensive objective, its GP over the networks that trained (warped values).
        warps:
            Per expensive objective, the :class:`Warp` its GP models.
        classifiers:
            Per expensive objective, the GP regression of the floor indicator, or ``None``
            without a floor (see :func:`floor_of`).
        floor_value:
            Per objective (``m``), the warped floor value (0 where there is none).
        observed:
            The completed trials' outcomes as the acquisition compares them, ``n x m``: warped
            for expensive, scaled to ``[0, 1]`` for cheap objectives.
    """

    expensive: list[int]
    gps: list[SingleTaskGP]
    warps: list[Warp]
    classifiers: list[SingleTaskGP | None]
    floor_value: torch.Tensor
    observed: torch.Tensor

    @property
    def hyperparameters(self) -> list[dict[str, torch.Tensor]]:
        """Per GP, then per classifier (empty without one), for warm starts."""
        return [_surrogate.hyperparameters(gp) for gp in self.gps] + [
            _surrogate.hyperparameters(c) if c is not None else {} for c in self.classifiers
        ]


def fit_models(
    problem: Problem,
    inputs: Inputs,
    warm_starts: Sequence[dict[str, torch.Tensor] | None] | None,
    refit: bool,
) -> Models:
    """One GP per expensive objective; a floor classifier beside it where there is a floor."""
    p = problem
    m = p.train_Y.shape[1]
    expensive = [i for i in range(m) if i not in p.cheap]
    e = len(expensive)

    def warm(index: int) -> dict[str, torch.Tensor] | None:
        if warm_starts is None or index >= len(warm_starts):
            return None
        return warm_starts[index] or None

    observed = p.train_Y.clone()
    for column, objective in enumerate(p.cheap):
        observed[:, objective] = inputs.scaled_cheap(inputs.train)[:, column]
    models = Models(expensive, [], [], [], torch.zeros(m, dtype=torch.float64), observed)
    for column, objective in enumerate(expensive):
        y = p.train_Y[:, objective]
        # Trials on the floor (see ``floor_of``) are left out of the GP, which models the
        # networks that trained; a second GP regresses the floor indicator on all trials.
        on_floor = floor_of(y)
        trained = ~on_floor if on_floor is not None else torch.ones_like(y, dtype=torch.bool)
        warp = Warp(y[trained])
        observed[:, objective] = warp(y)
        models.warps.append(warp)
        models.gps.append(
            _surrogate.fit_gp(
                inputs.train[trained],
                observed[trained, objective],
                p.cat_dims,
                p.num_dims,
                cost_dims=inputs.cost_dims,
                warm_start=warm(column),
                refit=refit,
            )
        )
        classifier = None
        if on_floor is not None:
            # With exact costs the floor is read from them alone (see ``floor_of``).
            classifier = _surrogate.fit_gp(
                inputs.train,
                on_floor.to(torch.float64),
                [] if inputs.cost_dims else p.cat_dims,
                [] if inputs.cost_dims else p.num_dims,
                cost_dims=inputs.cost_dims,
                warm_start=warm(e + column),
                refit=refit,
            )
            models.floor_value[objective] = float(warp(y.min().reshape(1))[0])
        models.classifiers.append(classifier)
    return models


@dataclass
class Prediction:
    """Every candidate's predicted outcomes.

    Args:
        mean:
            Per candidate and objective (``N x m``), as the acquisition compares them: the GP
            mean of warped expensive objectives, the exact scaled value of cheap ones.
        std:
            Standard deviations, ``N x m`` (0 for cheap objectives).
        floor:
            The floor mixture of each outcome.
        own_mean:
            Per candidate and expensive objective (``N x e``), the mean in the objective's
            own units (of the mixture with the floor where there is one), for the record.
        own_std:
            The matching standard deviations, ``N x e``.
    """

    mean: torch.Tensor
    std: torch.Tensor
    floor: _acquisition.Floor
    own_mean: torch.Tensor
    own_std: torch.Tensor


def predict(problem: Problem, inputs: Inputs, models: Models) -> Prediction:
    """The candidates' outcomes: GP marginals, floor probabilities and exact cheap values."""
    p = problem
    n_cand, m = len(inputs.candidates), p.train_Y.shape[1]
    mean = torch.zeros(n_cand, m, dtype=torch.float64)
    std = torch.zeros(n_cand, m, dtype=torch.float64)
    probability = torch.zeros(n_cand, m, dtype=torch.float64)
    own_mean = torch.zeros(n_cand, len(models.expensive), dtype=torch.float64)
    own_std = torch.zeros_like(own_mean)
    for column, objective in enumerate(models.expensive):
        mean[:, objective], std[:, objective] = _surrogate.predict(
            models.gps[column], inputs.candidates
        )
        classifier = models.classifiers[column]
        if classifier is not None:
            probability[:, objective] = _surrogate.predict(classifier, inputs.candidates)[0].clamp(
                0.0, 1.0
            )
        # In the objective's own units: the mixture's mean and standard deviation.
        gm, gs = models.warps[column].inverse(mean[:, objective], std[:, objective])
        q_floor = probability[:, objective]
        worst = p.train_Y[:, objective].min()
        own_mean[:, column] = (1 - q_floor) * gm + q_floor * worst
        second = (1 - q_floor) * (gs**2 + gm**2) + q_floor * worst**2
        own_std[:, column] = (second - own_mean[:, column] ** 2).clamp_min(0).sqrt()
    for column, objective in enumerate(p.cheap):
        mean[:, objective] = inputs.scaled_cheap(inputs.candidates)[:, column]
    floor = _acquisition.Floor(probability, models.floor_value)
    return Prediction(mean, std, floor, own_mean, own_std)


def select(
    problem: Problem,
    inputs: Inputs,
    models: Models,
    prediction: Prediction,
    q: int,
    selection: Selection,
) -> list[int]:
    """The candidates' order: by exact expected (hypervolume) improvement, a joint batch of
    ``q`` by BoTorch's Monte Carlo acquisitions, or by DPP-Net's Pareto rule."""
    front = _evaluated_front(problem, inputs, models, q)
    if problem.train_Y.shape[1] == 1:
        return _select_single(inputs, models, prediction, front, q)
    # 10% of the range below the worst value seen or predicted, per objective.
    ref_point = botorch.utils.multi_objective.infer_reference_point(
        torch.cat([models.observed, prediction.mean])
    )
    front = front[pareto_mask(front, deduplicate=True)] if len(front) else front
    # The exact expected hypervolume improvement of each candidate alone, from independent
    # Gaussian marginals and exact cheap values: for one proposal the acquisition itself.
    screen = _acquisition.expected_hvi(
        prediction.mean, prediction.std, front, ref_point, prediction.floor
    )
    if selection == "pareto":
        # Within a front DPP-Net leaves the choice open: take the largest expected gain first.
        order: list[int] = []
        for members in _acquisition.pareto_fronts(prediction.mean):
            order.extend(sorted(members, key=lambda i: -float(screen[i])))
        return order
    if not models.expensive or q == 1:
        return _by(screen)
    # A joint batch: the candidates interact, so the Monte Carlo acquisition ranks the best
    # ``MAX_EXACT_CANDIDATES`` of the screen.
    feasible = problem.feasible.bool()
    return _acquisition.rank_by_ehvi(
        _acquisition.joint_model(models.gps, _kinds(problem, models), inputs.width),
        inputs.candidates,
        inputs.train[feasible] if bool(feasible.any()) else inputs.train,
        ref_point,
        q,
        pending=inputs.pending,
        screen=screen,
    )


def _kinds(problem: Problem, models: Models) -> list[tuple[str, int]]:
    """Per objective, ``("cheap", column)`` of its cheap value or ``("gp", index)`` of its GP."""
    cheap, gps = list(problem.cheap), models.expensive
    m = problem.train_Y.shape[1]
    return [("cheap", cheap.index(i)) if i in cheap else ("gp", gps.index(i)) for i in range(m)]


def _evaluated_front(problem: Problem, inputs: Inputs, models: Models, q: int) -> torch.Tensor:
    """The feasible trials' outcomes (``k x m``), and for one proposal the running trials'.

    Running trials count as evaluated at their predicted mean (a "kriging believer"), so
    parallel workers spread out instead of all chasing the same gain; a joint batch counts
    them inside its Monte Carlo acquisition instead.
    """
    feasible = models.observed[problem.feasible.bool()]
    if q != 1 or not len(inputs.pending):
        return feasible
    m = problem.train_Y.shape[1]
    believed = torch.zeros(len(inputs.pending), m, dtype=torch.float64)
    for column, objective in enumerate(models.expensive):
        believed[:, objective] = _surrogate.predict(models.gps[column], inputs.pending)[0]
    for column, objective in enumerate(problem.cheap):
        believed[:, objective] = inputs.scaled_cheap(inputs.pending)[:, column]
    return torch.cat([feasible, believed])


def _select_single(
    inputs: Inputs, models: Models, prediction: Prediction, front: torch.Tensor, q: int
) -> list[int]:
    """One objective: expected improvement, and log noisy EI for a joint batch."""
    mean, std = prediction.mean[:, 0], prediction.std[:, 0]
    observed = models.observed[:, 0]
    best = float(front[:, 0].max()) if len(front) else float(observed.min())
    screen = _acquisition.expected_improvement(mean, std, best, prediction.floor.probability[:, 0])
    if not models.expensive or q == 1:
        return _by(screen + mean * 1e-12)
    return _acquisition.rank_single(
        models.gps[0], inputs.candidates, inputs.train, q, pending=inputs.pending, screen=screen
    )


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


def column_bounds(values: torch.Tensor) -> torch.Tensor:
    """Per column of ``values`` (``n x k``), the lowest and highest value: ``2 x k``.

    The ``bounds`` of BoTorch's ``normalize`` (which leaves a constant column unscaled).
    """
    if len(values) == 0:
        return torch.zeros(2, values.shape[1], dtype=torch.float64)
    return torch.stack([values.min(dim=0).values, values.max(dim=0).values])


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


def _by(score: torch.Tensor) -> list[int]:
    return [int(i) for i in torch.argsort(score, descending=True, stable=True)]
