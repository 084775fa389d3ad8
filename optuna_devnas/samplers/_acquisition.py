"""Choosing candidates: expected hypervolume improvement, or DPP-Net's Pareto rule.

Everything here maximizes (``_pareto``'s convention) and works on tensors:

- :func:`rank_by_ehvi` ranks a discrete candidate set with BoTorch's
  ``qLogNoisyExpectedHypervolumeImprovement`` and ``optimize_acqf_discrete``: the first ``q``
  are chosen jointly (sequential greedy, each conditioned on those before), so a batch stays
  diverse; cheap objectives are exact outputs of a ``GenericDeterministicModel`` that reads them
  from extra input columns, beside one GP per expensive objective. Long candidate lists are
  first cut by :func:`expected_hvi`, the exact expected hypervolume improvement of each
  candidate alone (closed form, thousands per millisecond), so the Monte Carlo acquisition,
  which also accounts for noisy observations, running trials and the batch, sees a few
  hundred. For a single proposal :func:`expected_hvi` alone is the exact acquisition (the
  caller ranks by it directly).
- :func:`pareto_fronts` is DPP-Net's rule (Dong et al. ECCV 2018, section 3.3): the candidates
  non-dominated by (predicted mean, exact cheap values), then the next fronts.
- :func:`rank_single` ranks by log noisy expected improvement when there is one objective.

BoTorch is imported at the top: ``_ranking`` loads this module at the first ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import functools
import math

from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.models import SingleTaskGP
from botorch.models.deterministic import GenericDeterministicModel
from botorch.models.model import Model, ModelList
from botorch.optim import optimize_acqf_discrete
from botorch.sampling import MCSampler
from botorch.sampling.get_sampler import get_sampler
from botorch.utils.multi_objective.box_decompositions.non_dominated import (
    FastNondominatedPartitioning,
)
import numpy as np
import torch

from optuna_devnas.samplers._pareto import pareto_mask

MC_SAMPLES = 64
"""Quasi-Monte Carlo samples of the acquisition (fixed base samples: deterministic ranks)."""

MAX_EXACT_CANDIDATES = 256
"""Candidates the Monte Carlo acquisition scores; more are cut by the optimistic screen."""


def joint_model(
    gps: Sequence[SingleTaskGP], kinds: Sequence[tuple[str, int]], n_features: int
) -> Model:
    """A model of all objectives over inputs ``[encoding | cheap values]``.

    Args:
        gps:
            One fitted GP per expensive objective (fitted on the full inputs; their kernels
            only look at the first ``n_features`` columns).
        kinds:
            For each objective in order, ``("gp", j)`` for ``gps[j]`` or ``("cheap", j)`` for
            the ``j``-th cheap column, which sits at ``n_features + j``.
        n_features:
            Width of the encoding part of the inputs.
    """
    models: list[Model] = []
    for kind, j in kinds:
        if kind == "gp":
            models.append(gps[j])
        else:
            models.append(GenericDeterministicModel(_column_reader(n_features + j)))
    return ModelList(*models)


def _column_reader(column: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def read(Z: torch.Tensor) -> torch.Tensor:
        return Z[..., column : column + 1]

    return read


def expected_hvi(
    mean: torch.Tensor,
    std: torch.Tensor,
    front: torch.Tensor,
    ref_point: torch.Tensor,
    floor: Floor | None = None,
) -> torch.Tensor:
    """Exact expected hypervolume improvement of independent Gaussian outcomes (``n``).

    ``mean`` and ``std`` are ``n x m`` (``std`` 0 for exact cheap objectives), ``front`` the
    current ``p x m`` Pareto front. The non-dominated region is split into boxes
    ``[l, u]`` (BoTorch's partitioning); a point's improvement is the sum over boxes of the
    product over objectives of ``clamp(y - l, 0, u - l)``, and with independent outcomes its
    expectation is the product of ``psi(l) - psi(u)``, ``psi(a) = E[(Y - a)+]`` (Yang et al.
    2019, eq. 19). BoTorch's ``ExpectedHypervolumeImprovement`` computes the same from a model
    posterior per call; here the marginals are already known for thousands of candidates, so
    this screen costs one tensor expression. With ``floor``, each outcome is the mixture of
    its Gaussian (weight ``1 - probability``) and the floor value (weight ``probability``);
    ``psi`` of a mixture is the mixture of the ``psi``, so the expectation stays exact.
    """
    if len(front) == 0:
        lower = ref_point.unsqueeze(0)
        upper = torch.full_like(lower, math.inf)
    else:
        partitioning = FastNondominatedPartitioning(ref_point=ref_point, Y=front)
        lower, upper = partitioning.get_hypercell_bounds()  # (cells, m) each
    mu, sigma = mean.unsqueeze(-2), std.unsqueeze(-2)  # (n, 1, m)
    gain = _psi(lower, mu, sigma) - _psi(upper, mu, sigma)  # (n, cells, m)
    if floor is not None:
        p = floor.probability.unsqueeze(-2)  # (n, 1, m)
        value = floor.value.expand_as(mean).unsqueeze(-2)
        zero = torch.zeros_like(value)
        at_floor = _psi(lower, value, zero) - _psi(upper, value, zero)
        gain = (1 - p) * gain + p * at_floor
    return gain.clamp_min(0).prod(dim=-1).sum(dim=-1)


@dataclass(frozen=True)
class Floor:
    """A point mass of each outcome at a known worst value ("the network did not train").

    Args:
        probability:
            Probability of the floor per candidate and objective, ``n x m`` (0 where an
            objective has no floor).
        value:
            The floor value per objective, ``m`` (any value where the probability is 0).
    """

    probability: torch.Tensor
    value: torch.Tensor


def expected_improvement(
    mean: torch.Tensor,
    std: torch.Tensor,
    best: float,
    floor_probability: torch.Tensor | None = None,
) -> torch.Tensor:
    """Exact expected improvement over ``best`` of Gaussian outcomes (maximized), ``n``.

    With ``floor_probability`` (``n``), the outcome is at a floor no better than ``best``
    with that probability, where it improves nothing.
    """
    improvement = _psi(torch.tensor(best, dtype=mean.dtype), mean, std)
    if floor_probability is None:
        return improvement
    return (1 - floor_probability) * improvement


def _psi(a: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``E[(Y - a)+]`` for ``Y ~ N(mu, sigma^2)``; ``(mu - a)+`` where ``sigma`` is 0."""
    finite = torch.isfinite(a)
    a = torch.where(finite, a, torch.zeros_like(a))
    safe = sigma.clamp_min(1e-12)
    z = (mu - a) / safe
    normal = torch.distributions.Normal(0.0, 1.0)
    smooth = safe * normal.log_prob(z).exp() + (mu - a) * normal.cdf(z)
    value = torch.where(sigma > 0, smooth, (mu - a).clamp_min(0))
    return torch.where(finite, value, torch.zeros_like(value))


def rank_by_ehvi(
    model: Model,
    candidates: torch.Tensor,
    baseline: torch.Tensor,
    ref_point: torch.Tensor,
    q: int,
    *,
    pending: torch.Tensor | None = None,
    screen: torch.Tensor | None = None,
    max_exact: int = MAX_EXACT_CANDIDATES,
) -> list[int]:
    """Indices of ``candidates`` (``n x D``) in the order the acquisition prefers them.

    Args:
        model:
            A model of every objective over the candidates' inputs (:func:`joint_model`).
        candidates:
            Inputs to choose from, ``n x D``; none may be already evaluated or running.
        baseline:
            Inputs of the evaluated trials, ``r x D``.
        ref_point:
            Hypervolume reference point, ``m``.
        q:
            How many to choose jointly; the rest follow in order of their own value.
        pending:
            Inputs of running trials, ``p x D``: the acquisition counts them as evaluated.
        screen:
            Optional score per candidate (``n``, larger is better) to keep the best
            ``max_exact`` of before the Monte Carlo acquisition.
        max_exact:
            Candidates the Monte Carlo acquisition scores at most.
    """
    acquisition = functools.partial(qLogNoisyExpectedHypervolumeImprovement, ref_point=ref_point)
    return _rank_mc(acquisition, model, candidates, baseline, q, pending, screen, max_exact)


def rank_single(
    model: Model,
    candidates: torch.Tensor,
    baseline: torch.Tensor,
    q: int,
    *,
    pending: torch.Tensor | None = None,
    screen: torch.Tensor | None = None,
    max_exact: int = MAX_EXACT_CANDIDATES,
) -> list[int]:
    """Like :func:`rank_by_ehvi` for one (maximized) objective, by log noisy EI."""
    return _rank_mc(
        qLogNoisyExpectedImprovement, model, candidates, baseline, q, pending, screen, max_exact
    )


def _rank_mc(
    acquisition: Callable[..., AcquisitionFunction],
    model: Model,
    candidates: torch.Tensor,
    baseline: torch.Tensor,
    q: int,
    pending: torch.Tensor | None,
    screen: torch.Tensor | None,
    max_exact: int,
) -> list[int]:
    """Rank with a noisy Monte Carlo ``acquisition`` (fixed base samples, pruned baseline)."""
    n = len(candidates)
    if n == 0:
        return []
    order = torch.arange(n)
    if screen is not None and n > max_exact:
        order = torch.argsort(screen, descending=True, stable=True)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        acqf = acquisition(
            model=model,
            X_baseline=baseline,
            X_pending=pending if pending is not None and len(pending) else None,
            sampler=_sampler(model, baseline),
            prune_baseline=True,
            cache_root=False,
        )
        return _rank(acqf, candidates, order, q, max_exact)


def _sampler(model: Model, baseline: torch.Tensor) -> MCSampler:
    with torch.no_grad():
        posterior = model.posterior(baseline[:1])
    return get_sampler(posterior, torch.Size([MC_SAMPLES]), seed=0)  # type: ignore[arg-type]


def _rank(
    acqf: AcquisitionFunction,
    candidates: torch.Tensor,
    order: torch.Tensor,
    q: int,
    max_exact: int,
) -> list[int]:
    kept = order[:max_exact]
    choices = candidates[kept]
    with torch.no_grad():
        values = torch.cat([acqf(part.unsqueeze(-2)) for part in choices.split(512)])
    chosen: list[int] = []
    if min(q, len(kept)) > 1:
        picked, _ = optimize_acqf_discrete(acqf, q=min(q, len(kept)), choices=choices)
        for row in picked:
            chosen.append(int((choices == row).all(dim=-1).nonzero()[0, 0]))
    taken = set(chosen)
    rest = [int(i) for i in torch.argsort(values, descending=True, stable=True)]
    ranked = [int(kept[i]) for i in chosen + [i for i in rest if i not in taken]]
    return ranked + [int(i) for i in order[max_exact:]]


def pareto_fronts(mean: torch.Tensor) -> list[list[int]]:
    """DPP-Net's rule: candidate indices by non-dominated front of ``mean`` (``n x m``, max).

    The first list holds the candidates no other candidate dominates (DPP-Net keeps these),
    the next those only the first front dominates, and so on.
    """
    remaining = np.arange(len(mean))
    fronts: list[list[int]] = []
    while len(remaining):
        mask = pareto_mask(mean[remaining]).numpy()
        fronts.append([int(i) for i in remaining[mask]])
        remaining = remaining[~mask]
    return fronts
