from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from optuna_devnas.data import TensorData
from optuna_devnas.instanas import MetaGraph, mobilenet_v2_baseline, train_baseline


def test_baseline_follows_the_meta_graphs_layout() -> None:
    model = mobilenet_v2_baseline(num_classes=10, input_shape=(3, 32, 32), width_mult=0.5)
    stem = model.features[0][0]
    assert isinstance(stem, nn.Conv2d) and stem.stride == (1, 1)
    meta_graph = MetaGraph(num_classes=10, input_shape=(3, 32, 32), width_mult=0.5)
    # Same feature maps after the blocks: 4x4 at the end on 32x32 inputs.
    features = model.features[:-1](torch.randn(2, 3, 32, 32))
    last = meta_graph.specs[-1]
    assert tuple(features.shape[1:]) == (last.out_channels, *last.output_size)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_grey_and_tiny_inputs_get_a_fitting_stem() -> None:
    model = mobilenet_v2_baseline(num_classes=10, input_shape=(1, 8, 8), width_mult=0.25)
    assert model.features[0][0].in_channels == 1
    assert model.features[:-1](torch.randn(2, 1, 8, 8)).shape[-1] == 2
    with pytest.raises(ValueError, match="width_mult=-1"):
        mobilenet_v2_baseline(num_classes=10, width_mult=-1)


def test_trained_baseline_reports_error_and_latency(
    digits: TensorData, take: Callable[..., TensorData]
) -> None:
    result = train_baseline(take(digits, 256), width_mult=0.25, epochs=1, latency_images=2)
    assert 0.0 <= result.val_error <= 1.0
    assert 0 < result.latency < 1.0
    assert result.width_mult == 0.25
