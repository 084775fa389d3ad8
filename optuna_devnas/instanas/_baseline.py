"""The static baseline InstaNAS is measured against: torchvision's MobileNetV2.

The network is ``torchvision.models.mobilenet_v2`` at a width multiplier, on the same stage
layout as the meta-graph (stride-1 stem and second stage on inputs of 32 pixels or less, no map
below 2x2), trained with the package's training loop for as many epochs as an InstaNAS run
trains its meta-graph, and timed image by image like the instance-aware network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
import torchvision

from optuna_devnas._device import intra_op_threads
from optuna_devnas.data import TensorData
from optuna_devnas.instanas._inference import measure_per_image_latency
from optuna_devnas.instanas._options import check_input_shape, stage_setting
from optuna_devnas.objectives import train_classifier


def mobilenet_v2_baseline(
    *,
    num_classes: int,
    input_shape: Sequence[int] = (3, 32, 32),
    width_mult: float = 1.0,
    stem_stride: int | None = None,
) -> nn.Module:
    """torchvision's MobileNetV2 on the meta-graph's stage layout for ``input_shape``.

    Args:
        num_classes:
            Classes of the classifier.
        input_shape:
            ``(channels, height, width)``. Default ``(3, 32, 32)``.
        width_mult:
            MobileNetV2's width multiplier. Default 1.0.
        stem_stride:
            Stride of the stem; None: 1 for inputs of 32 pixels or less, else 2. Default None.
    """
    if not width_mult > 0:
        raise ValueError(f"Got width_mult={width_mult!r}, but expected a positive number.")
    channels, _, _ = check_input_shape(input_shape)
    stem, stages = stage_setting(input_shape, stem_stride=stem_stride)
    model = torchvision.models.mobilenet_v2(
        weights=None,
        num_classes=num_classes,
        width_mult=width_mult,
        inverted_residual_setting=stages,
    )
    first = model.features[0][0]
    assert isinstance(first, nn.Conv2d)
    if channels != first.in_channels or stem != first.stride[0]:
        # torchvision hard-codes an RGB, stride-2 stem; rebuild it for this input.
        replacement = nn.Conv2d(
            channels, first.out_channels, 3, stride=stem, padding=1, bias=False
        )
        nn.init.kaiming_normal_(replacement.weight, mode="fan_out")
        model.features[0][0] = replacement
    return model


@dataclass(frozen=True)
class BaselineResult:
    """A trained static baseline: its validation error and measured seconds per image."""

    width_mult: float
    val_error: float
    latency: float
    model: nn.Module


def train_baseline(
    data: TensorData,
    *,
    width_mult: float = 1.0,
    epochs: int = 7,
    lr: float = 0.05,
    weight_decay: float = 4e-5,
    batch_size: int = 64,
    stem_stride: int | None = None,
    latency_images: int = 64,
    threads: int = 1,
    seed: int = 0,
    device: str = "cpu",
) -> BaselineResult:
    """Train MobileNetV2 at ``width_mult`` on ``data`` and time it like InstaNAS.

    Args:
        data:
            Training and validation images.
        width_mult:
            Width multiplier. Default 1.0.
        epochs:
            Training epochs; use an InstaNAS run's ``config.total_epochs`` for the same budget.
            Default 7.
        lr:
            Learning rate (SGD, Nesterov, cosine). Default 0.05.
        weight_decay:
            Weight decay. Default 4e-5.
        batch_size:
            Mini-batch size. Default 64.
        stem_stride:
            Stem stride; None picks it from the input size. Default None.
        latency_images:
            Validation images timed one by one. Default 64.
        threads:
            Intra-op threads for training and timing. Default 1.
        seed:
            Seed of weights and batch order. Default 0.
        device:
            Torch device. Default ``"cpu"``.
    """
    with intra_op_threads(threads):
        torch.manual_seed(seed)
        model = mobilenet_v2_baseline(
            num_classes=data.num_classes,
            input_shape=data.input_shape,
            width_mult=width_mult,
            stem_stride=stem_stride,
        ).to(memory_format=torch.channels_last)
        errors = train_classifier(
            model,
            data,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            weight_decay=weight_decay,
            seed=seed,
            device=device,
        )
        model.eval()
        images = data.val_x[:latency_images].to(device)
        latency = measure_per_image_latency(model, images, threads=threads)
    return BaselineResult(width_mult, errors[-1], latency, model)
