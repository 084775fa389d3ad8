"""Fixed-length encoding of parameter dictionaries for the surrogate.

Use :class:`ParamEncoding` to turn the modelled parameters of trials and candidates (plain
``dict[str, Any]``) into one tensor row each, ``n x d``, that the Gaussian process reads.
Variable-length cells and conditional parameters get the same length: a categorical parameter
a candidate lacks takes an extra "absent" category, a numerical one the value ``-1`` (outside
the ``[0, 1]`` range present values are scaled to).

Besides one column per parameter, categorical parameters that share the same choices (the
convolution positions of a DPP-Net cell, the six edges of a NAS-Bench-201 cell) add one column
per choice holding the fraction of those parameters that took it. Such "operation counts" are
what a network's accuracy and cost depend on most, and a stationary kernel over them lets the
surrogate generalise across positions, which a per-position kernel cannot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import json
import math
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
import torch

ABSENT_NUMBER = -1.0
"""Encoded value of a numerical parameter a candidate does not have."""


def params_key(params: Mapping[str, Any]) -> str:
    """A canonical string for a parameter dictionary: equal parameters, equal keys."""
    return json.dumps({name: params[name] for name in sorted(params)}, sort_keys=True)


class ParamEncoding:
    """Encodes parameter dictionaries over fixed distributions as ``n x d`` tensors.

    Args:
        distributions:
            The modelled parameters and their distributions; the order of the columns follows
            the sorted parameter names.
        canonical:
            Optional map applied to each parameter dictionary before it is encoded, so that
            parameters describing the same network get the same row (e.g. a cell's
            ``identity`` layers, which compute nothing, dropped).
    """

    def __init__(
        self,
        distributions: Mapping[str, BaseDistribution],
        canonical: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    ) -> None:
        self.canonical = canonical
        self.distributions = {name: distributions[name] for name in sorted(distributions)}
        self.categorical = [
            name
            for name, dist in self.distributions.items()
            if isinstance(dist, CategoricalDistribution)
        ]
        self.numerical = [
            name
            for name, dist in self.distributions.items()
            if isinstance(dist, (IntDistribution, FloatDistribution))
        ]
        groups: dict[tuple[Any, ...], list[str]] = {}
        for name in self.categorical:
            choices = tuple(self.distributions[name].choices)  # type: ignore[attr-defined]
            groups.setdefault(choices, []).append(name)
        # Only choices shared by two or more parameters carry information beyond the
        # per-parameter columns.
        self.groups = [(choices, names) for choices, names in groups.items() if len(names) > 1]
        n_cat, n_num = len(self.categorical), len(self.numerical)
        n_counts = sum(len(choices) for choices, _ in self.groups)
        self.cat_dims = list(range(n_cat))
        """Columns holding category indices (for a categorical kernel)."""
        self.num_dims = list(range(n_cat, n_cat + n_num + n_counts))
        """Columns holding numbers in ``[0, 1]`` or ``-1`` (for a stationary kernel)."""
        self.dim = n_cat + n_num + n_counts

    def encode(self, params_list: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """Encode ``params_list`` as a ``len(params_list) x dim`` double tensor."""
        if self.canonical is not None:
            params_list = [self.canonical(params) for params in params_list]
        rows = [self._encode_one(params) for params in params_list]
        if not rows:
            return torch.empty(0, self.dim, dtype=torch.float64)
        return torch.tensor(rows, dtype=torch.float64)

    def _encode_one(self, params: Mapping[str, Any]) -> list[float]:
        row: list[float] = []
        for name in self.categorical:
            dist = self.distributions[name]
            assert isinstance(dist, CategoricalDistribution)
            # The absent token is the category after the last choice.
            index = _choice_index(dist, params[name]) if name in params else len(dist.choices)
            row.append(float(index))
        for name in self.numerical:
            dist = self.distributions[name]
            row.append(_scale(dist, params[name]) if name in params else ABSENT_NUMBER)
        for choices, names in self.groups:
            present = [params[name] for name in names if name in params]
            for choice in choices:
                row.append(sum(_same(value, choice) for value in present) / len(names))
        return row

    def contains(self, params: Mapping[str, Any]) -> bool:
        """Whether every parameter of ``params`` is modelled and its value is allowed."""
        for name, value in params.items():
            dist = self.distributions.get(name)
            if dist is None:
                return False
            try:
                internal = dist.to_internal_repr(value)
            except (ValueError, TypeError):
                return False
            # Optuna has no public containment test; its samplers and Trial use this one.
            if not dist._contains(internal):
                return False
        return True


def _same(a: Any, b: Any) -> bool:
    # ``1 == True`` in Python, but they are different categorical choices.
    return type(a) is type(b) and a == b


def _choice_index(dist: CategoricalDistribution, value: Any) -> int:
    for index, choice in enumerate(dist.choices):
        if _same(choice, value) or (
            isinstance(choice, float)
            and isinstance(value, float)
            and math.isnan(choice)
            and math.isnan(value)
        ):
            return index
    return len(dist.choices)  # A value the distribution no longer has reads as absent.


def _scale(dist: BaseDistribution, value: Any) -> float:
    assert isinstance(dist, (IntDistribution, FloatDistribution))
    low, high, x = float(dist.low), float(dist.high), float(value)
    if dist.log:
        low, high, x = math.log(low), math.log(high), math.log(x)
    if high <= low:
        return 0.5
    return min(max((x - low) / (high - low), 0.0), 1.0)
