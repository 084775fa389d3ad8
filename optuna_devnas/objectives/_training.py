"""Validation error (and accuracy) of a network after a short, seeded training run.

The expensive objective of a search. Trains with SGD, Nesterov momentum and a cosine learning
rate, as CondenseNet does (Huang et al., CVPR 2018, section 4), on tensors held in memory. Networks
with learned group convolutions get the group-lasso penalty and their condensation stages
spread over the first half of training (CondenseNet section 3.1). Each epoch's validation error is
reported to the trial so Optuna's pruners can stop a poor architecture early, and sent to
:func:`optuna_devnas.tracking.log_step` for training curves.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
import torch
from torch import nn
import torch.nn.functional as F

from optuna_devnas._checks import check_positive_int
from optuna_devnas._device import resolve_device
from optuna_devnas._steps import log_step
from optuna_devnas.data import TensorData, load_data
from optuna_devnas.objectives._base import Objective
from optuna_devnas.spaces import (
    Architecture,
    condense_stage,
    group_lasso_penalty,
    learned_group_convs,
)


@torch.no_grad()
def evaluate_error(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512
) -> float:
    """Classification error of ``model`` on ``(x, y)`` (model put in eval mode)."""
    model.eval()
    device = next(model.parameters()).device
    wrong = 0
    for start in range(0, len(y), batch_size):
        logits = model(x[start : start + batch_size].to(device))
        wrong += int((logits.argmax(dim=1).cpu() != y[start : start + batch_size]).sum())
    return wrong / len(y)


def _reports_to_trial(trial: optuna.Trial | None) -> bool:
    # Optuna's pruners (and trial.report) only support single-objective studies.
    return trial is not None and len(trial.study.directions) == 1


def train_classifier(
    model: nn.Module,
    data: TensorData,
    *,
    epochs: int,
    lr: float = 0.1,
    batch_size: int = 64,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    lasso_weight: float = 1e-5,
    seed: int = 0,
    device: str | torch.device = "cpu",
    trial: optuna.Trial | None = None,
    metric_name: str = "val_error",
) -> list[float]:
    """Train ``model`` in place on ``data``; return the validation error after each epoch.

    Raises ``optuna.TrialPruned`` when ``trial``'s pruner says so (single-objective studies).
    """
    torch_device = resolve_device(device)
    model.to(torch_device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True
    )
    steps_per_epoch = math.ceil(len(data.train_y) / batch_size)
    total_steps = epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    has_learned_groups = bool(learned_group_convs(model))
    condense_factor = learned_group_convs(model)[0].condense_factor if has_learned_groups else 1
    errors: list[float] = []
    step = 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(data.train_y), generator=generator)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            x = data.train_x[index].to(torch_device)
            y = data.train_y[index].to(torch_device)
            loss = F.cross_entropy(model(x), y)
            if has_learned_groups and lasso_weight > 0:
                loss = loss + lasso_weight * group_lasso_penalty(model)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if has_learned_groups:
                # Stages 1..C-1 spread evenly over the first half of training.
                stage = min(condense_factor - 1, (2 * (condense_factor - 1) * step) // total_steps)
                condense_stage(model, stage)
        error = evaluate_error(model, data.val_x, data.val_y)
        errors.append(error)
        log_step(trial, metric_name, error, epoch)
        if _reports_to_trial(trial):
            assert trial is not None
            trial.report(error, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"Pruned at epoch {epoch} with {metric_name}={error}.")
    return errors


class ValidationError(Objective):
    """Objective: the validation error rate after training a network for a few epochs (minimize).

    An objective like :class:`ValidationAccuracy`, not an exception: it is named after the
    quantity it measures (``val_error``), as the other objectives are.

    Example:

        .. code-block:: python

            train = ValidationError(data="digits", epochs=5)

            def objective(trial):
                arch = space.suggest(trial)
                return train(arch, trial=trial)

    Args:
        data:
            A :class:`~optuna_devnas.data.TensorData`, or a name for
            :func:`~optuna_devnas.data.load_data` (``"digits"``, ``"digits32"``,
            ``"fashion_mnist"``, ``"fashion_mnist32"``, ``"cifar10"``, ``"cifar100"``; CIFAR
            needs ``data_root``). Default ``"digits"``.
        epochs:
            Training epochs. Default 5.
        lr:
            Initial learning rate (cosine-annealed to zero). Default 0.1.
        batch_size:
            Mini-batch size. Default 64.
        weight_decay:
            L2 weight decay. Default 1e-4.
        lasso_weight:
            Weight of CondenseNet's group-lasso penalty. Default 1e-5.
        seed:
            Seed of weight initialisation (for architectures) and of the batch order. Default 0.
        device:
            Torch device to train on, ``"cpu"`` or ``"cuda"``. Default ``"cpu"``.
        data_root:
            Folder of a CIFAR data set. Default None.
    """

    name = "val_error"
    direction = "minimize"

    def __init__(
        self,
        *,
        data: str | TensorData = "digits",
        epochs: int = 5,
        lr: float = 0.1,
        batch_size: int = 64,
        weight_decay: float = 1e-4,
        lasso_weight: float = 1e-5,
        seed: int = 0,
        device: str = "cpu",
        data_root: str | None = None,
    ) -> None:
        check_positive_int(epochs, "epochs")
        if not lr > 0:
            raise ValueError(f"Got lr={lr!r}, but expected a positive number.")
        check_positive_int(batch_size, "batch_size")
        if weight_decay < 0 or lasso_weight < 0:
            raise ValueError(
                f"Got weight_decay={weight_decay!r} and lasso_weight={lasso_weight!r}, but "
                "expected non-negative numbers."
            )
        resolve_device(device)
        self.data = (
            data if isinstance(data, TensorData) else load_data(data, seed=seed, root=data_root)
        )
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.lasso_weight = lasso_weight
        self.seed = seed
        self.device = device
        self.num_classes = self.data.num_classes
        self.input_shape = self.data.input_shape
        self.history: list[float] = []

    def build(self, target: nn.Module | Architecture) -> nn.Module:
        if isinstance(target, Architecture):
            torch.manual_seed(self.seed)
        return super().build(target)

    def evaluate(
        self,
        model: nn.Module,
        *,
        trial: optuna.Trial | None = None,
        lr: float | None = None,
        epochs: int | None = None,
    ) -> float:
        """Train ``model`` (in place) and return its final validation error.

        Args:
            model:
                The network; it is trained in place.
            trial:
                Reports each epoch's error to this trial (pruning) and to ``log_step``.
            lr:
                Overrides the learning rate, e.g. one suggested by the trial.
            epochs:
                Overrides the number of epochs.
        """
        self.history = train_classifier(
            model,
            self.data,
            epochs=self.epochs if epochs is None else epochs,
            lr=self.lr if lr is None else lr,
            batch_size=self.batch_size,
            weight_decay=self.weight_decay,
            lasso_weight=self.lasso_weight,
            seed=self.seed,
            device=self.device,
            trial=trial,
            metric_name=self.name,
        )
        return self.history[-1]

    def __call__(self, target: nn.Module | Architecture, **kwargs: Any) -> float:
        return self.evaluate(self.build(target), **kwargs)


class ValidationAccuracy(ValidationError):
    """Validation accuracy (1 - error) after the same training as :class:`ValidationError`."""

    name = "val_accuracy"
    direction = "maximize"

    def evaluate(self, model: nn.Module, **kwargs: Any) -> float:
        return 1.0 - super().evaluate(model, **kwargs)
