"""The common interface of objectives: a name, a direction, a call on a model or architecture.

Every objective is also a function of a trial's parameters through :meth:`Objective.for_space`,
which is how ``DPPSampler`` evaluates cheap objectives (latency, size, FLOPs) for candidate
architectures without training them, e.g.
``DPPSampler(cheap_objectives={1: latency.for_space(space)})``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from copy import deepcopy
import threading
from typing import TYPE_CHECKING, Any

from torch import nn

from optuna_devnas._checks import check_positive_int  # noqa: F401  (re-exported)
from optuna_devnas.spaces import Architecture

if TYPE_CHECKING:
    from optuna_devnas.spaces import CellSpace

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

    def for_space(self, space: CellSpace) -> ParamsObjective:
        """This objective as a function of a trial's parameters in ``space``, cached.

        Example:

            .. code-block:: python

                space = CellSpace()
                size = ParamCount(input_shape=(1, 8, 8))
                sampler = DPPSampler(cheap_objectives={1: size.for_space(space)})

        Args:
            space:
                The space whose parameters (``"cell.n_layers"``, ``"cell.layer_<i>"``) the
                function receives; other parameters are ignored.
        """
        return ParamsObjective(self, space)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, direction={self.direction!r})"


class ParamsObjective:
    """``params -> value`` for an objective on a space, computed once per architecture.

    Many candidates of a search share an architecture (a child is proposed again at a later
    stage, workers recompute the same batch), so values are cached by architecture. Calls are
    serialized with a lock: two latency measurements at once would disturb each other.

    Args:
        objective:
            The objective to evaluate on each architecture.
        space:
            The space that turns parameters into architectures.
    """

    def __init__(self, objective: Objective, space: CellSpace) -> None:
        from optuna_devnas.spaces import CellSpace

        if not isinstance(objective, Objective):
            raise TypeError(f"Got objective={objective!r}, but expected an Objective.")
        if not isinstance(space, CellSpace):
            raise TypeError(f"Got space={space!r}, but expected a CellSpace.")
        self.objective = objective
        self.space = space
        self.cache: dict[Architecture, float] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.objective.name

    @property
    def direction(self) -> str:
        return self.objective.direction

    def __call__(self, params: dict[str, Any]) -> float:
        return self.evaluate_architecture(self.space.from_params(params))

    def evaluate_architecture(self, arch: Architecture) -> float:
        """The objective's value for ``arch`` (from the cache when seen before)."""
        with self._lock:
            if arch not in self.cache:
                self.cache[arch] = float(self.objective(arch))
            return self.cache[arch]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ParamsObjective({self.objective!r}, {self.space!r})"


def check_input_shape(
    input_shape: Sequence[int], argument: str = "input_shape"
) -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (3, 4) or any(s < 1 for s in shape):
        raise ValueError(
            f"Got {argument}={tuple(input_shape)}, but expected (channels, height, width) or "
            "(batch, channels, height, width) with positive sizes."
        )
    return shape


def batched_shape(input_shape: Sequence[int], argument: str = "input_shape") -> tuple[int, ...]:
    """``(batch, channels, height, width)``: ``input_shape`` with batch 1 prepended if absent."""
    shape = check_input_shape(input_shape, argument)
    return shape if len(shape) == 4 else (1, *shape)


def check_num_classes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError(f"Got num_classes={value!r}, but expected an integer of at least 2.")
    return value


class InferenceObjective(Objective):
    """Base of objectives computed on a network's inference form (size, FLOPs, memory, latency).

    The inference form is what gets deployed: :func:`optuna_devnas.spaces.condense` replaces
    learned group convolutions by their condensed modules, and the copy is put in eval mode.
    The model passed in is never modified.

    Args:
        num_classes:
            Classes of the networks built from architectures. Default 10.
        input_shape:
            ``(channels, height, width)`` or ``(batch, channels, height, width)`` of the input;
            batch 1 when absent.
        condensed:
            Evaluate the condensed (deployed) form rather than the training form. Default True.
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        input_shape: Sequence[int] = (1, 3, 32, 32),
        condensed: bool = True,
    ) -> None:
        self.num_classes = check_num_classes(num_classes)
        self.batch_shape = batched_shape(input_shape)
        self.input_shape = self.batch_shape[1:]
        if not isinstance(condensed, bool):
            raise ValueError(f"Got condensed={condensed!r}, but expected True or False.")
        self.condensed = condensed

    def inference_model(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` in inference form (condensed unless ``condensed=False``), eval."""
        from optuna_devnas.spaces import condense

        copy = condense(model) if self.condensed else deepcopy(model)
        return copy.eval()
