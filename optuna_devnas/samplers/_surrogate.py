"""Gaussian-process surrogate of one expensive objective over encoded candidates.

Use :func:`fit_gp` to fit a BoTorch ``SingleTaskGP`` to ``n x d`` encodings (from
``_encoding.ParamEncoding``) and their observed values, and :func:`predict` for the posterior
mean and standard deviation of many candidates at once. The model is an ordinary BoTorch model,
so the acquisition functions of ``_acquisition`` take it as it is. BoTorch and GPyTorch are
imported at the top: ``_ranking`` loads this module at the first ranking.

The kernel adds a categorical (Hamming-distance) kernel over the category columns and a Matern
5/2 kernel over the numerical and operation-count columns, each with its own output scale and
one length scale per column (ARD), plus one Matern kernel per exactly known cost column.
Outputs are standardized; with cost columns the prior mean is linear in them
(:class:`CostTrend`). Length scales get a log-normal prior and the fit is capped in
iterations: without them L-BFGS wanders for hundreds of steps pushing irrelevant length scales
to infinity, which costs seconds and changes no prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
from typing import Any

from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.kernels import CategoricalKernel
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from gpytorch.constraints import Interval
from gpytorch.kernels import AdditiveKernel, Kernel, MaternKernel, ScaleKernel
from gpytorch.means import Mean
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import LogNormalPrior
from linear_operator.utils.cholesky import psd_safe_cholesky
import torch

COLD_MAX_ITER = 100
"""L-BFGS iterations of a fit from the default hyperparameters."""

WARM_MAX_ITER = 30
"""L-BFGS iterations of a fit started from an earlier fit's hyperparameters."""


def build_kernel(
    cat_dims: Sequence[int], num_dims: Sequence[int], cost_dims: Sequence[int] = ()
) -> Kernel:
    """The covariance over encodings with category columns ``cat_dims``, numbers ``num_dims``.

    ``cost_dims`` are columns of exactly known costs (cheap objectives, scaled to ``[0, 1]``):
    each gets its own one-dimensional Matern kernel, added to the rest, with length scales
    near 0.2 a priori, so that a sharp dependence on cost (untrainable networks are the
    cheapest ones) is learnt from a few trials.
    """
    parts: list[Kernel] = []
    if cat_dims:
        categorical = CategoricalKernel(
            ard_num_dims=len(cat_dims),
            active_dims=list(cat_dims),
            lengthscale_constraint=Interval(0.01, 100.0, initial_value=1.0),
            lengthscale_prior=LogNormalPrior(0.0, 1.0),
        )
        parts.append(ScaleKernel(categorical))
    if num_dims:
        numerical = get_covar_module_with_dim_scaled_prior(
            ard_num_dims=len(num_dims), active_dims=list(num_dims)
        )
        parts.append(ScaleKernel(numerical))
    if cost_dims:
        costs = [
            MaternKernel(
                nu=2.5,
                active_dims=[dim],
                lengthscale_constraint=Interval(0.01, 10.0, initial_value=0.2),
                lengthscale_prior=LogNormalPrior(math.log(0.2), 1.0),
            )
            for dim in cost_dims
        ]
        parts.append(ScaleKernel(AdditiveKernel(*costs)))
    if not parts:
        raise ValueError("Got no columns to model, but expected at least one.")
    kernel = parts[0]
    for part in parts[1:]:
        kernel = kernel + part
    return kernel


def fit_gp(
    X: torch.Tensor,
    y: torch.Tensor,
    cat_dims: Sequence[int],
    num_dims: Sequence[int],
    *,
    cost_dims: Sequence[int] = (),
    warm_start: Mapping[str, torch.Tensor] | None = None,
    refit: bool = True,
    seed: int = 0,
) -> SingleTaskGP:
    """Fit a GP to encodings ``X`` (``n x d``) and values ``y`` (``n``), maximizing the MLL.

    Args:
        X:
            Training encodings, ``n x d``.
        y:
            Observed values, ``n``, in the objective's own scale (standardized inside).
        cat_dims:
            Columns of ``X`` holding category indices.
        num_dims:
            Columns of ``X`` holding numbers.
        cost_dims:
            Columns of ``X`` holding exactly known costs (see :func:`build_kernel`).
        warm_start:
            Hyperparameters (:func:`hyperparameters` of an earlier fit) to start from: fewer
            iterations, and predictions that change smoothly from trial to trial.
        refit:
            With a usable ``warm_start``, ``False`` keeps its hyperparameters as they are (the
            model only conditions on ``X`` and ``y``).
        seed:
            Seeds the restarts BoTorch draws when a fit fails, so equal data give equal fits.
    """
    model = SingleTaskGP(
        X.to(torch.float64),
        y.to(torch.float64).reshape(-1, 1),
        covar_module=build_kernel(cat_dims, num_dims, cost_dims),
        mean_module=CostTrend(cost_dims, X.to(torch.float64)) if cost_dims else None,
    )
    max_iter = COLD_MAX_ITER
    if warm_start is not None:
        try:
            model.load_state_dict(dict(warm_start), strict=False)
        except RuntimeError:  # A different encoding: start cold.
            pass
        else:
            if not refit:
                model.eval()
                return model
            max_iter = WARM_MAX_ITER
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": max_iter}})
    model.eval()
    return model


class CostTrend(Mean):  # type: ignore[misc]
    """A prior mean linear in the cost columns ``cost_dims``, flat below the cheapest row of ``X``.

    With a constant mean a GP reverts to the average network where it has no data, so networks
    cheaper than any that trained looked as promising as the average one; the trend says
    cheaper is worse where the data say so (a zero slope where they do not), and stays flat
    below the cheapest trained network, since whether a cheaper one trains at all is the floor
    classifier's business. Not gpytorch's ``LinearMean``: it reads every input column and
    draws its initial weights from the global random stream (changing the user's seed).
    """

    def __init__(self, cost_dims: Sequence[int], X: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("dims", torch.tensor(list(cost_dims), dtype=torch.long))
        lowest = X[:, list(cost_dims)].min(dim=0).values if len(X) else None
        self.register_buffer("lowest", lowest)
        self.register_parameter(
            "weights", torch.nn.Parameter(torch.zeros(len(cost_dims), 1, dtype=torch.float64))
        )
        self.register_parameter("bias", torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        costs = x.index_select(-1, self.dims)
        if self.lowest is not None:
            costs = torch.maximum(costs, self.lowest)
        return (costs @ self.weights).squeeze(-1) + self.bias


def hyperparameters(model: SingleTaskGP) -> dict[str, torch.Tensor]:
    """The fitted hyperparameters of ``model`` (not its data), for ``fit_gp(warm_start=...)``."""
    return {
        name: value.detach().clone()
        for name, value in model.state_dict().items()
        if not name.startswith("outcome_transform") and name != "mean_module.lowest"
    }


@torch.no_grad()
def predict(
    model: SingleTaskGP, X: torch.Tensor, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and standard deviation (``n`` each, original scale) at ``X`` (``n x d``).

    Only the marginals are computed, chunk by chunk: BoTorch's joint posterior over thousands
    of candidates would build an ``n x n`` covariance.
    """
    # Not model.posterior(X.unsqueeze(-2)): the same values (to 1e-11), measured 1.7 times as
    # slow over NAS-Bench-201's 15,625 candidates (0.86 s against 0.51 s with 200 trials).
    train_X = model.train_inputs[0]
    train_y = model.train_targets
    kernel = model.covar_module
    noise = model.likelihood.noise.reshape(-1)[0]
    K = kernel(train_X).to_dense() + noise * torch.eye(len(train_X), dtype=train_X.dtype)
    L = psd_safe_cholesky(K)
    alpha = torch.cholesky_solve((train_y - model.mean_module(train_X)).unsqueeze(-1), L)
    means, variances = [], []
    for part in X.to(train_X.dtype).split(chunk):
        cross = kernel(part, train_X).to_dense()  # (chunk, n)
        means.append((cross @ alpha).squeeze(-1) + model.mean_module(part))
        v = torch.linalg.solve_triangular(L, cross.T, upper=False)
        prior = kernel(part.unsqueeze(-2), part.unsqueeze(-2)).to_dense().reshape(-1)
        variances.append((prior - (v * v).sum(0)).clamp_min(1e-12))
    mean, var = torch.cat(means), torch.cat(variances)
    transform: Any = getattr(model, "outcome_transform", None)
    if transform is not None:
        scale = transform.stdvs.reshape(-1)[0]
        return mean * scale + transform.means.reshape(-1)[0], var.sqrt() * scale
    return mean, var.sqrt()
