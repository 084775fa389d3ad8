from __future__ import annotations

import pytest
import torch

from optuna_devnas._errors import InputShapeError
from optuna_devnas.instanas import OPTION_NAMES
from optuna_devnas.instanas._options import block_specs, build_option, stage_setting


def test_cifar_layout_keeps_32x32_through_the_second_stage() -> None:
    stem, stages = stage_setting((3, 32, 32))
    assert stem == 1
    assert stages == [
        [1, 16, 1, 1],
        [6, 24, 2, 1],
        [6, 32, 3, 2],
        [6, 64, 4, 2],
        [6, 96, 3, 1],
        [6, 160, 3, 2],
        [6, 320, 1, 1],
    ]


def test_large_inputs_get_mobilenet_v2s_imagenet_strides() -> None:
    stem, stages = stage_setting((3, 224, 224))
    assert stem == 2
    assert [s for *_, s in stages] == [1, 2, 2, 2, 1, 2, 1]


def test_tiny_inputs_never_shrink_below_2x2() -> None:
    _, _, _, specs = block_specs((3, 8, 8), width_mult=0.25)
    assert min(min(spec.output_size) for spec in specs) == 2
    assert [spec.input_size[0] for spec in specs][:4] == [8, 8, 8, 8]


def test_seventeen_blocks_and_seven_shape_changes_at_full_width() -> None:
    stem, stem_channels, last, specs = block_specs((3, 32, 32), width_mult=1.0)
    assert (stem, stem_channels, last, len(specs)) == (1, 32, 1280, 17)
    assert [spec.index for spec in specs if spec.changes_shape] == [0, 1, 3, 6, 10, 13, 16]
    assert specs[-1].out_channels == 320 and specs[-1].output_size == (4, 4)


@pytest.mark.parametrize("option", range(len(OPTION_NAMES)))
def test_every_option_maps_the_block_input_to_its_output(option: int) -> None:
    _, _, _, specs = block_specs((3, 32, 32), width_mult=0.5)
    spec = specs[3]  # the third stage's first block: stride 2
    branch = build_option(spec, option).eval()
    y = branch(torch.randn(2, spec.in_channels, *spec.input_size))
    assert tuple(y.shape) == (2, spec.out_channels, *spec.output_size)


def test_bad_layout_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="width_mult=0"):
        block_specs((3, 32, 32), width_mult=0)
    with pytest.raises(ValueError, match="stem_stride=3"):
        stage_setting((3, 32, 32), stem_stride=3)
    with pytest.raises(InputShapeError, match="input_shape"):
        stage_setting((32, 32))
