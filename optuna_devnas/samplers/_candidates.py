"""Candidate parameter dictionaries in an arbitrary Optuna search space.

Use :func:`neighbourhood` for the one-parameter changes of a set of parents (the Pareto set),
:func:`random_candidates` for uniform draws, :func:`enumerate_all` when the whole space is small
enough to score every point, :func:`spread_by_cost` to pick an initial design that covers
the range of the cheap objectives, and :class:`Branches` to keep only the candidates a
conditional (define-by-run) objective would realise as proposed. Everything takes and returns
plain ``dict[str, Any]`` parameters over known distributions; randomness comes from a
``numpy`` generator the caller seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import itertools
import math
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

Params = dict[str, Any]

MAX_INT_VALUES = 16
"""Integer ranges up to this many values are changed to every value, larger ones sampled."""

NUMERIC_CHANGES = 6
"""Values tried per numerical parameter when it cannot be enumerated."""


def values_of(dist: BaseDistribution) -> list[Any] | None:
    """Every value of ``dist`` if it is finite and small, else ``None``."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution) and not dist.log:
        count = (dist.high - dist.low) // dist.step + 1
        if count <= MAX_INT_VALUES:
            return list(range(dist.low, dist.high + 1, dist.step))
    if isinstance(dist, IntDistribution) and dist.log and dist.high - dist.low < MAX_INT_VALUES:
        return list(range(dist.low, dist.high + 1))
    return None


def draw(dist: BaseDistribution, rng: np.random.Generator) -> Any:
    """One uniform draw from ``dist`` (log-uniform for log distributions)."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(rng.integers(len(dist.choices)))]
    assert isinstance(dist, (IntDistribution, FloatDistribution))
    low, high = float(dist.low), float(dist.high)
    if dist.log:
        x = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        x = rng.uniform(low, high)
    if isinstance(dist, IntDistribution):
        step = dist.step
        x = dist.low + round((x - dist.low) / step) * step
        return int(min(max(x, dist.low), dist.high))
    if dist.step is not None:
        x = low + round((x - low) / dist.step) * dist.step
    return float(min(max(x, low), high))


def neighbourhood(
    parents: Sequence[Mapping[str, Any]],
    distributions: Mapping[str, BaseDistribution],
    rng: np.random.Generator,
) -> list[Params]:
    """Every one-parameter change of every parent (numerical ranges sampled).

    Only parameters a parent has are changed: in a conditional space that keeps each
    candidate's set of parameters one the objective has already asked for.
    """
    found: list[Params] = []
    for parent in parents:
        for name, current in parent.items():
            dist = distributions.get(name)
            if dist is None:
                continue
            options = values_of(dist)
            if options is None:
                options = [draw(dist, rng) for _ in range(NUMERIC_CHANGES)]
            for value in options:
                if type(value) is not type(current) or value != current:
                    found.append({**parent, name: value})
    return found


def random_candidates(
    patterns: Sequence[Sequence[str]],
    distributions: Mapping[str, BaseDistribution],
    n: int,
    rng: np.random.Generator,
) -> list[Params]:
    """``n`` uniform draws, each over the parameter names of a random entry of ``patterns``."""
    if not patterns:
        return []
    out: list[Params] = []
    for _ in range(n):
        names = patterns[int(rng.integers(len(patterns)))]
        out.append({name: draw(distributions[name], rng) for name in names})
    return out


def space_size(names: Sequence[str], distributions: Mapping[str, BaseDistribution]) -> int | None:
    """Number of points of the product of ``names``' distributions, ``None`` if infinite."""
    size = 1
    for name in names:
        options = values_of(distributions[name])
        if options is None:
            return None
        size *= len(options)
    return size


def enumerate_all(
    names: Sequence[str], distributions: Mapping[str, BaseDistribution]
) -> list[Params]:
    """Every point of the product of ``names``' (finite) distributions."""
    columns = [values_of(distributions[name]) for name in names]
    assert all(column is not None for column in columns)
    return [
        dict(zip(names, values))
        for values in itertools.product(*columns)  # type: ignore[arg-type]
    ]


def spread_by_cost(costs: np.ndarray, taken: np.ndarray, rng: np.random.Generator) -> int:
    """Index of the row of ``costs`` (``n x c``) farthest from every row of ``taken``.

    An initial design that covers the cheap objectives' range (from the cheapest networks to
    the most expensive) lets the first fitted surrogate see every part of the front.
    Ties are broken at random.
    """
    if len(costs) == 0:
        raise ValueError("Got no candidates to choose from.")
    span = np.ptp(costs, axis=0) if len(costs) > 1 else np.ones(costs.shape[1])
    span = np.where(span > 0, span, 1.0)
    scaled = costs / span
    if len(taken) == 0:
        distance = rng.random(len(costs))
    else:
        others = taken / span
        distance = np.min(np.linalg.norm(scaled[:, None, :] - others[None, :, :], axis=-1), axis=1)
        distance = distance + 1e-9 * rng.random(len(costs))
    return int(np.argmax(distance))


class Branches:
    """Which parameter sets a define-by-run objective asked for, by categorical value.

    In a conditional space a categorical value decides which parameters follow (``kind="a"``
    asks for ``x``, ``kind="b"`` for ``c`` and ``d``). A one-parameter change of ``kind``, or a
    random draw over another branch's names, is a candidate the objective would not realise
    as proposed: it asks for other parameters, the independent sampler fills them in, and the
    trial may repeat a completed configuration. :meth:`allows` keeps a candidate only if, for
    each of its categorical values that finished trials have taken, one of those trials had
    exactly the candidate's parameter names.

    Args:
        finished:
            The parameters of the finished trials.
        distributions:
            The distributions of every parameter.
    """

    def __init__(
        self,
        finished: Sequence[Mapping[str, Any]],
        distributions: Mapping[str, BaseDistribution],
    ) -> None:
        categorical = {
            name
            for name, dist in distributions.items()
            if isinstance(dist, CategoricalDistribution)
        }
        self.names_by_value: dict[tuple[str, type, Any], set[tuple[str, ...]]] = {}
        for params in finished:
            names = tuple(sorted(params))
            for name in categorical & set(params):
                value = params[name]
                self.names_by_value.setdefault((name, type(value), value), set()).add(names)

    def allows(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` is a parameter set seen with each of its categorical values."""
        names = tuple(sorted(params))
        for name, value in params.items():
            seen = self.names_by_value.get((name, type(value), value))
            if seen is not None and names not in seen:
                return False
        return True
