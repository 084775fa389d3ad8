from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from optuna_devnas.instanas import MetaGraph, OptionLatencyTable
from optuna_devnas.instanas._latency_table import (
    CALIBRATION_RANGE,
    calibrate_entries,
    calibration_policies,
    meta_graph_layout,
)
from optuna_devnas.instanas._options import OPTION_NAMES
from optuna_devnas.objectives import LatencyTableMismatchError


def test_table_has_one_positive_entry_per_block_option(table: OptionLatencyTable) -> None:
    assert table.seconds.shape == (17, 5)
    assert (table.seconds > 0).all() and table.fixed_seconds > 0
    assert table.settings["clock"] == "thread" and table.device["threads"] == 1


def test_reference_points_are_sums_of_entries(table: OptionLatencyTable) -> None:
    meta_graph = MetaGraph(num_classes=10, input_shape=(3, 8, 8), width_mult=0.25)
    for name in ("mbv2", "all", "min"):
        policy = meta_graph.reference_policy(name)
        assert table.reference(name) == pytest.approx(float(table.latency(policy)), rel=1e-5)
    assert table.reference("min") < table.reference("mbv2") < table.reference("all")
    assert table.predict(meta_graph.reference_policy("min")) == pytest.approx(
        table.fixed_seconds + table.reference("min"), rel=1e-5
    )


def test_latency_of_a_batch_of_policies(table: OptionLatencyTable) -> None:
    policy = torch.zeros(3, 17, 5, dtype=torch.bool)
    policy[1, 4, 2] = True
    policy[2, 4, 2] = policy[2, 7, 0] = True
    z = table.latency(policy)
    expected = [0.0, table.seconds[4, 2], table.seconds[4, 2] + table.seconds[7, 0]]
    assert z.tolist() == pytest.approx([float(e) for e in expected], rel=1e-5)


def test_save_load_round_trip_and_layout_check(table: OptionLatencyTable, tmp_path: Path) -> None:
    path = tmp_path / "options.json"
    table.save(path)
    loaded = OptionLatencyTable.load(path)
    assert torch.equal(loaded.seconds, table.seconds) and loaded.layout == table.layout
    loaded.check(MetaGraph(num_classes=10, input_shape=(3, 8, 8), width_mult=0.25))
    with pytest.raises(LatencyTableMismatchError, match="width_mult"):
        loaded.check(MetaGraph(num_classes=10, input_shape=(3, 8, 8), width_mult=0.5))
    data = json.loads(path.read_text())
    data["version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="version=99"):
        OptionLatencyTable.load(path)


def test_bad_tables_are_refused(table: OptionLatencyTable) -> None:
    with pytest.raises(ValueError, match="seconds of shape"):
        OptionLatencyTable(seconds=[[1.0] * 4] * 17, layout=table.layout)
    with pytest.raises(ValueError, match="rounds=0"):
        OptionLatencyTable.measure(MetaGraph(num_classes=10, input_shape=(3, 8, 8)), rounds=0)


def test_calibration_recovers_each_options_cost_in_context() -> None:
    # Entries timed alone; inside a network option k costs (1 + k / 4) times its entry.
    meta_graph = MetaGraph(num_classes=10, input_shape=(3, 8, 8), width_mult=0.25)
    generator = torch.Generator().manual_seed(0)
    alone = 1e-4 * (1 + torch.rand(17, 5, generator=generator, dtype=torch.float64))
    truth = torch.tensor([1.0, 1.25, 1.5, 1.75, 2.0], dtype=torch.float64)
    policies = torch.stack(calibration_policies(meta_graph)).to(torch.float64)
    fixed = 3e-4
    measured = fixed + (policies * alone * truth).sum(dim=(1, 2))
    seconds, fitted_fixed, scales = calibrate_entries(alone, policies, measured)
    assert scales == pytest.approx(truth.tolist(), rel=1e-9)
    assert fitted_fixed == pytest.approx(fixed, rel=1e-9)
    # The calibrated table predicts any child, not only the ones it was fitted on.
    table = OptionLatencyTable(
        seconds=seconds.tolist(), layout=meta_graph_layout(meta_graph), fixed_seconds=fitted_fixed
    )
    policy = meta_graph.normalize(torch.rand(1, 17, 5, generator=generator) < 0.4)
    expected = fixed + float((policy[0].to(torch.float64) * alone * truth).sum())
    assert float(table.predict(policy)[0]) == pytest.approx(expected, rel=1e-5)
    # A timing gone wrong (a child measured faster than the cheapest) is clamped, not negated.
    broken = measured.clone()
    broken[2] = measured[0] / 2
    assert calibrate_entries(alone, policies, broken)[2][1] == CALIBRATION_RANGE[0]
    # A cheapest child measured faster than its own entries leaves the fixed parts their
    # floor, never zero: every child runs the stem and the classifier.
    too_fast = measured.clone()
    too_fast[0] = float((policies[0] * alone).sum()) * 0.5
    assert calibrate_entries(alone, policies, too_fast)[1] == 0.0
    floor = calibrate_entries(alone, policies, too_fast, fixed_alone=2e-4)[1]
    assert floor == pytest.approx(CALIBRATION_RANGE[0] * 2e-4)


def test_measured_table_records_its_calibration(table: OptionLatencyTable) -> None:
    scales = table.settings["calibration"]
    assert list(scales) == list(OPTION_NAMES)
    assert all(CALIBRATION_RANGE[0] <= s <= CALIBRATION_RANGE[1] for s in scales.values())
