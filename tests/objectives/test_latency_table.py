from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
import statistics
import subprocess
import sys
from typing import Any

import pytest

from optuna_devnas import InvalidArchitectureError
from optuna_devnas.objectives import (
    Latency,
    LatencyTable,
    LatencyTableMismatchError,
    space_layer_shapes,
)
from optuna_devnas.spaces import Architecture, CellSpace, choices_at

SPACE = CellSpace(max_layers=3)
SHAPE = (1, 1, 8, 8)


@pytest.fixture(scope="module")
def table() -> LatencyTable:
    calls: list[tuple[int, int, str]] = []
    table = LatencyTable.profile(
        SPACE,
        input_shape=SHAPE,
        min_run_time=0.003,
        rounds=3,
        calibration=8,
        progress=lambda done, total, label: calls.append((done, total, label)),
    )
    items = len(table.entries) + 1 + 8  # entries, overhead, calibration networks
    assert [c[0] for c in calls] == list(range(1, 3 * items + 1))
    assert {c[1] for c in calls} == {3 * items}
    return table


def test_table_predicts_measured_latency_within_tolerance(table: LatencyTable) -> None:
    archs = [
        SPACE.architecture(layers)
        for layers in [
            ("conv1x1",),
            ("learned_group_conv1x1", "identity"),
            ("group_conv3x3", "bn_relu", "conv1x1"),
            ("depthwise_conv3x3", "bn", "group_conv3x3"),
        ]
    ]
    # Interleaved rounds, so that a change of the machine's load between the rounds touches all
    # architectures alike; each keeps its median.
    latency = Latency(input_shape=SHAPE, min_run_time=0.004, repeats=1)
    rounds = [[latency(arch) for arch in archs] for _ in range(5)]
    measured = [statistics.median(values) for values in zip(*rounds)]
    predicted = [table.predict(arch) for arch in archs]
    # On a shared machine, other work slows every measurement by a common factor that changes
    # over minutes (0.5x-2x between profiling and measuring here), and single measurements of a
    # network by 20-30%: absolute predictions get a wide band, latencies relative to their
    # geometric mean a narrower one. A table missing the overhead, the calibration or cells
    # fails these by far.
    ratios = [p / m for p, m in zip(predicted, measured)]
    assert 0.4 < statistics.median(ratios) < 2.5, ratios
    relative = [r / statistics.geometric_mean(ratios) for r in ratios]
    assert all(0.5 < r < 2.0 for r in relative), (relative, predicted, measured)
    assert max(measured) > 2.5 * min(measured)  # a spread the relative check can see
    assert predicted.index(min(predicted)) == measured.index(min(measured)) == 0


def test_prediction_is_overhead_plus_scaled_layer_sum(table: LatencyTable) -> None:
    arch = SPACE.architecture(["conv3x3", "bn_relu", "conv1x1"])
    keys = ["conv3x3:16->32@8x8", "bn_relu:32->32@8x8", "conv1x1:32->8@8x8"]
    assert all(key in table.entries for key in keys)
    assert table.layer_sum(arch) > sum(table.entries[key] for key in keys)  # 5 more cells
    # 8 calibration networks are too few for a factor per kind of layer: one scale.
    assert table.kind_scales == {} and table.overhead_scale == 1.0
    assert table.predict(arch) == pytest.approx(
        table.overhead + table.scale * table.layer_sum(arch)
    )
    assert 0.5 < table.scale < 5.0
    assert len(table.calibration) == 8
    network = arch.build(num_classes=10, input_shape=SHAPE[1:])
    assert table(network) == table(arch) == table.predict(arch)
    function = table.for_space(CellSpace(max_layers=2, name="other"))
    assert function({"other.n_layers": 1, "other.layer_0": "conv1x1"}) == table.predict(
        SPACE.architecture(["conv1x1"])
    )


def test_calibrate_fits_the_scale_and_combine_takes_medians(table: LatencyTable) -> None:
    arch = SPACE.architecture(["conv3x3", "bn_relu"])
    copy = LatencyTable.from_dict(table.to_dict())
    target = copy.overhead + 1.5 * copy.layer_sum(arch)
    copy.calibrate({arch: target})
    assert copy.scale == pytest.approx(1.5)
    assert copy.predict(arch) == pytest.approx(target)
    assert copy.calibration == [
        {"layers": list(arch.layers), "measured": target, "layer_sum": copy.layer_sum(arch)}
    ]
    copy.calibrate({})
    assert copy.scale == 1.0

    # Networks whose 3x3 convolutions cost twice their entries, everything else 1.2 times:
    # enough of them, and each kind of layer gets its own factor.
    networks = [
        SPACE.architecture(layers)
        for n in (1, 2, 3)
        for layers in itertools.islice(itertools.product(*(choices_at(i) for i in range(n))), 9)
    ]
    truth = {
        arch: 1.2 * copy.overhead
        + sum((2.0 if kind == "conv3x3" else 1.2) * v for kind, v in copy.kind_sums(arch).items())
        for arch in networks
    }
    copy.calibrate(truth)
    # (pulled slightly towards the one scale, so not exactly the truth)
    assert copy.kind_scales["conv3x3"] == pytest.approx(2.0, rel=0.15)
    assert copy.kind_scales["conv1x1"] == pytest.approx(1.2, rel=0.15)
    assert copy.kind_scales["conv3x3"] > 1.3 * copy.kind_scales["conv1x1"]
    assert copy.overhead_scale == pytest.approx(1.2, rel=0.15)
    assert all(copy.predict(a) == pytest.approx(t, rel=0.1) for a, t in truth.items())
    assert LatencyTable.from_dict(copy.to_dict()).kind_scales == copy.kind_scales
    version_1 = {**copy.to_dict(), "version": 1}
    del version_1["kind_scales"], version_1["overhead_scale"]
    assert LatencyTable.from_dict(version_1).kind_scales == {}

    slower = LatencyTable.from_dict(table.to_dict())
    slower.entries = {key: 3 * value for key, value in slower.entries.items()}
    slower.overhead *= 3
    combined = LatencyTable.combine([table, slower, table])
    assert combined.entries == table.entries and combined.overhead == table.overhead
    assert combined.scale == pytest.approx(table.scale)
    assert combined.settings["combined_tables"] == 3
    with pytest.raises(LatencyTableMismatchError):
        LatencyTable.combine([table, table_for(CellSpace(max_layers=2))])
    with pytest.raises(ValueError, match="no tables"):
        LatencyTable.combine([])


def table_for(space: CellSpace) -> LatencyTable:
    data = {key: 1e-5 for key in (s.key for s in space_layer_shapes(space, SHAPE[1:]))}
    return LatencyTable(space=space, input_shape=SHAPE, entries=data, overhead=1e-4)


def test_save_and_load_keep_predictions_and_describe_the_device(
    table: LatencyTable, tmp_path: Path
) -> None:
    path = tmp_path / "table.json"
    table.save(path)
    data = json.loads(path.read_text())
    assert data["input_shape"] == list(SHAPE)
    assert data["space"] == SPACE.to_dict()
    assert data["device"]["threads"] == 1
    assert {"cpu_model", "torch_version", "platform"} <= set(data["device"])
    assert data["settings"]["clock"] == "thread"
    loaded = LatencyTable.load(path, space=SPACE, input_shape=SHAPE[1:])
    for arch in SPACE.enumerate(2):
        assert loaded.predict(arch) == table.predict(arch)


def test_tables_refuse_other_spaces_and_input_shapes(table: LatencyTable, tmp_path: Path) -> None:
    path = tmp_path / "table.json"
    table.save(path)
    with pytest.raises(LatencyTableMismatchError, match="growth_rates"):
        LatencyTable.load(path, space=CellSpace(max_layers=3, growth_rates=(8, 8, 8)))
    with pytest.raises(LatencyTableMismatchError, match="max_layers=4"):
        LatencyTable.load(path, space=CellSpace(max_layers=4))
    with pytest.raises(LatencyTableMismatchError, match=r"input_shape=\(3, 32, 32\)"):
        LatencyTable.load(path, input_shape=(3, 32, 32))
    with pytest.raises(LatencyTableMismatchError, match="stem_channels"):
        table.predict(Architecture(layers=("conv1x1",), stem_channels=8))
    with pytest.raises(LatencyTableMismatchError, match="at most 3"):
        table.predict(Architecture(layers=("conv1x1", "bn", "conv1x1", "bn")))
    with pytest.raises(LatencyTableMismatchError, match=r"\(1, 1, 8, 8\)"):
        table(Architecture(layers=("conv1x1",)).build(num_classes=10, input_shape=(1, 16, 16)))
    with pytest.raises(LatencyTableMismatchError, match="profiled for"):
        table.for_space(CellSpace(max_layers=3, depths=(1, 1, 1), growth_rates=(8, 16, 32)))
    with pytest.raises(TypeError, match="Latency"):
        table(Latency())  # type: ignore[arg-type]
    assert issubclass(LatencyTableMismatchError, ValueError)
    assert not issubclass(LatencyTableMismatchError, InvalidArchitectureError)


def test_tables_with_missing_entries_or_other_formats_are_refused(
    table: LatencyTable, tmp_path: Path
) -> None:
    data = table.to_dict()
    data["input_shape"] = [1, 3, 8, 8]  # the stem reads 3 channels: same cells, so accepted
    assert LatencyTable.from_dict(data).batch_shape == (1, 3, 8, 8)
    data["input_shape"] = [1, 1, 16, 16]  # cells on 16x16 maps: no entries for them
    with pytest.raises(LatencyTableMismatchError, match="without 108 of the 108"):
        LatencyTable.from_dict(data)
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="format='something-else'"):
        LatencyTable.load(path)
    path.write_text("not json")
    with pytest.raises(ValueError, match="not JSON"):
        LatencyTable.load(path)


def _wrong_shapes(data: dict[str, Any]) -> list[tuple[str, Any]]:
    header = {"format": data["format"], "version": data["version"]}
    string_entry = {**data, "entries": {**data["entries"]}}
    string_entry["entries"][next(iter(data["entries"]))] = "fast"
    return [
        ("a header and nothing else", header),
        ("a list", [data]),
        ("a number", 3),
        ("an entry holding a string", string_entry),
        ("entries as a list", {**data, "entries": list(data["entries"])}),
        ("a space as a string", {**data, "space": "CellSpace"}),
        ("an input shape as a number", {**data, "input_shape": 8}),
    ]


def test_valid_json_of_the_wrong_shape_is_a_value_error(
    table: LatencyTable, tmp_path: Path
) -> None:
    path = tmp_path / "wrong.json"
    for label, data in _wrong_shapes(table.to_dict()):
        path.write_text(json.dumps(data))
        with pytest.raises(ValueError) as caught:
            LatencyTable.load(path)
        assert str(path) in str(caught.value), label
        assert "Traceback" not in str(caught.value)


_SAVE_WITH_A_FILE_SIZE_LIMIT = """
import resource, signal, sys
from optuna_devnas.objectives import LatencyTable
table = LatencyTable.load(sys.argv[1])
table.settings["padding"] = "x" * 100_000  # larger than the limit below
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # a disk that fills up at 4 kB
try:
    table.save(sys.argv[1])
except OSError as error:
    print("failed:", error.strerror)
"""


def test_a_save_that_fails_leaves_the_previous_table_intact(
    table: LatencyTable, tmp_path: Path
) -> None:
    path = tmp_path / "table.json"
    table.save(path)
    before = path.read_bytes()
    result = subprocess.run(
        [sys.executable, "-c", _SAVE_WITH_A_FILE_SIZE_LIMIT, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("failed: File too large")
    assert path.read_bytes() == before  # not truncated
    assert [p.name for p in tmp_path.iterdir() if p.name != "table.json"] == []  # no temporary
    assert LatencyTable.load(path).entries == table.entries


def test_save_replaces_the_table_and_keeps_a_readable_mode(
    table: LatencyTable, tmp_path: Path
) -> None:
    path = tmp_path / "table.json"
    path.write_text("old")
    table.save(path)
    assert LatencyTable.load(path).entries == table.entries
    assert path.stat().st_mode & 0o444 == 0o444 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.json"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "tpu"}, "device='tpu'"),
        ({"rounds": 0}, "rounds=0"),
        ({"threads": 0}, "threads=0"),
        ({"calibration": -1}, "calibration=-1"),
        ({"input_shape": (1, 1, 1)}, "at least 4x4"),
        ({"backend": "tflite"}, "backend='tflite'"),
    ],
)
def test_profile_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LatencyTable.profile(SPACE, **{"input_shape": SHAPE, **kwargs})


def test_onnxruntime_table_predicts_the_onnxruntime_objective(tmp_path: Path) -> None:
    space = CellSpace(max_layers=2)
    table = LatencyTable.profile(
        space, input_shape=SHAPE, min_run_time=0.003, calibration=6, backend="onnxruntime"
    )
    assert table.backend == "onnxruntime" and table.settings["backend"] == "onnxruntime"
    table.save(tmp_path / "ort.json")
    assert LatencyTable.load(tmp_path / "ort.json", space=space).backend == "onnxruntime"
    archs = [
        space.architecture(layers)
        for layers in [("conv1x1",), ("conv3x3", "bn_relu"), ("group_conv3x3", "bn")]
    ]
    latency = Latency(input_shape=SHAPE, min_run_time=0.004, repeats=3, backend="onnxruntime")
    measured = [latency(arch) for arch in archs]
    predicted = [table.predict(arch) for arch in archs]
    ratios = [p / m for p, m in zip(predicted, measured)]
    assert 0.3 < statistics.median(ratios) < 3.0, (predicted, measured)
    # ONNX Runtime's per-call cost differs from eager PyTorch's: the overhead entry shows it.
    torch_table = LatencyTable.profile(space, input_shape=SHAPE, min_run_time=0.003, calibration=0)
    assert torch_table.backend == "torch" and table.overhead != torch_table.overhead
