"""The latency-table benchmark end to end on a few networks (its numbers are not judged here)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import latency_table


def test_benchmark_compares_the_table_and_two_measurements(tmp_path: Path) -> None:
    output = tmp_path / "latency.md"
    argv = ["--networks", "6", "--sizes", "8", "--threads", "1", "--output", str(output)]
    argv += ["--backends", "torch,onnxruntime", "--calibration", "12"]
    assert latency_table.main(argv) == 0
    text = output.read_text()
    for backend in ("torch", "onnxruntime"):
        for name in ("LatencyTable (factor per kind)", "LatencyTable, one scale", "a second"):
            row = next(
                line for line in text.splitlines() if name in line and f"| {backend} |" in line
            )
            cells = [c.strip() for c in row.split("|")[1:-1]]
            assert cells[0] == "8x8" and cells[1] == "1" and cells[2] == backend
            assert 0 <= int(cells[4].rstrip("%")) <= 100  # within 10%
            assert -1 <= float(cells[8]) <= 1  # Spearman
    for backend in ("torch", "onnxruntime"):  # the fitted factors are listed
        assert f"- 8x8, 1 thread(s), {backend}: " in text
    cross = [line for line in text.splitlines() if line.startswith("| 8x8 | 1 | torch | onnx")]
    assert len(cross) == 1 and -1 <= float(cross[0].split("|")[5]) <= 1
