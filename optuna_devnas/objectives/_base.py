"""The common interface of objectives: a name, a direction, a call on a model or architecture."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from torch import nn

from optuna_devnas.spaces import Architecture

DIRECTIONS = ("minimize", "maximize")


class Objective(abc.ABC):
    """An objective of a search: ``objective(model_or_architecture) -> float``.

    Subclasses set ``name`` and ``direction`` and implement :meth:`evaluate` on a module.
    Calling an objective on an :class:`~optuna_devnas.spaces.Architecture` builds it first with
    ``num_classes`` and ``input_shape``.
    """

    name: str
    direction: str
    num_classes: int = 10
    input_shape: tuple[int, ...] = (3, 32, 32)

    def build(self, target: nn.Module | Architecture) -> nn.Module:
        if isinstance(target, Architecture):
            return target.build(num_classes=self.num_classes, input_shape=self.input_shape[-3:])
        if isinstance(target, nn.Module):
            return target
        raise TypeError(
            f"Got {type(target).__name__}, but expected a torch.nn.Module or an Architecture."
        )

    @abc.abstractmethod
    def evaluate(self, model: nn.Module) -> float:
        """The objective's value for ``model``."""

    def __call__(self, target: nn.Module | Architecture, **kwargs: Any) -> float:
        return self.evaluate(self.build(target), **kwargs)


def check_input_shape(input_shape: Sequence[int], argument: str = "input_shape") -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (3, 4) or any(s < 1 for s in shape):
        raise ValueError(
            f"Got {argument}={tuple(input_shape)}, but expected (channels, height, width) or "
            "(batch, channels, height, width) with positive sizes."
        )
    return shape
