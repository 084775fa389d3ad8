"""The retarget benchmark: its report from the complete seeds, and a tiny real run."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from benchmarks import retarget
from benchmarks._nb201_samplers import sampler_source_hash
from benchmarks._nb201_table import DEFAULT_TABLE


def _fresh(sampler: str, seed: int, device: str, gaps: dict[str, float]) -> dict:
    return {
        "kind": "nb201",
        "dataset": "cifar10",
        "device": device,
        "objectives": ["error", "latency"],
        "sampler": sampler,
        "seed": seed,
        "n_trials": 200,
        "gaps": gaps,
        "error": None,
        "sampler_source": sampler_source_hash() if sampler == "dpp-cheap" else None,
    }


def _retargeted(seed: int, copied: float, more: float) -> dict:
    return {
        "kind": "retarget",
        "dataset": "cifar10",
        "source": "a",
        "target": "b",
        "seed": seed,
        "copied": 100,
        "gap_copied": copied,
        "gap_more": more,
        "new_repeats": 0,
        "source_s": 10.0,
        "more_s": 2.0,
        "sampler_source": sampler_source_hash(),
    }


def test_report_only_uses_the_complete_seeds(tmp_path: Path) -> None:
    records = [_retargeted(s, 0.5 + s, 0.1 * (s + 1)) for s in range(3)]
    for seed in range(3):
        records.append(_fresh("dpp-cheap", seed, "b", {"100": 0.25, "200": 0.1}))
        for peer, gap in (("random", 0.9), ("tpe", 0.6), ("nsga2", 0.7)):
            if (peer, seed) != ("nsga2", 2):  # seed 2 is incomplete: it is left out
                records.append(_fresh(peer, seed, "b", {"100": 1.0, "200": gap}))
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    output = tmp_path / "r.md"

    assert (
        retarget.main(
            ["--seeds", "10", "--pair", "a:b", "--pair", "c:d", "--report-only"]
            + ["--results", str(results), "--output", str(output)]
        )
        == 0
    )

    rows = [line for line in output.read_text().splitlines() if line.startswith("| cifar10")]
    # Seeds 0 and 1: copies 0.5/1.5, retargeted 0.1/0.2 (medians 1.00, 0.15); the pair c:d
    # has no seed and no row.
    assert rows == [
        "| cifar10: a -> b | 2 | 1.00 | 0.15 | 0.25 | 0.10 | 0.60 (tpe) | 0.60 | **met** |"
    ]
    assert results.read_text().count("\n") == len(records)  # nothing was run or appended


@pytest.mark.skipif(
    not DEFAULT_TABLE.is_file(), reason=f"no NAS-Bench-201 table at {DEFAULT_TABLE}"
)
def test_runs_in_parallel_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A real, tiny run in two worker processes: one retargeted study and the four fresh
    # searches of its seed, each stored once; a second call finds them all and runs nothing.
    results, output = tmp_path / "r.jsonl", tmp_path / "r.md"
    argv = ["--seeds", "1", "--pair", "titan_rtx_1:raspi4", "--source-trials", "8"]
    argv += ["--more", "3", "--fresh", "6,11", "--jobs", "2"]
    argv += ["--results", str(results), "--output", str(output)]

    assert retarget.main(argv) == 0

    records = [json.loads(line) for line in results.read_text().splitlines()]
    kinds = sorted((r["kind"], r.get("sampler", "")) for r in records)
    assert kinds == [("nb201", s) for s in ("dpp-cheap", "nsga2", "random", "tpe")] + [
        ("retarget", "")
    ]
    (mine,) = [r for r in records if r["kind"] == "retarget"]
    assert mine["copied"] == 8 and len(mine["values"]) == 11
    assert 0 <= mine["gap_more"] <= mine["gap_copied"] <= 100  # new trials lose nothing
    table = output.read_text()
    assert "| cifar10: titan_rtx_1 -> raspi4 | 1 |" in table
    curve = f"- cifar10: titan_rtx_1 -> raspi4: {mine['gap_copied']:.2f}, {mine['gap_more']:.2f}"
    assert "after 0, 3 new trials" in table and curve in table
    assert "5 runs to do with 2 job(s)" in capsys.readouterr().out

    assert retarget.main(argv) == 0
    assert "0 runs to do" in capsys.readouterr().out
    assert len(results.read_text().splitlines()) == len(records)


def test_reads_gzipped_records_and_refuses_to_write_them(tmp_path: Path) -> None:
    records = [_retargeted(0, 0.5, 0.1)]
    records += [
        _fresh(s, 0, "b", {"100": 0.2, "200": 0.3}) for s in ("dpp-cheap", *retarget.PEERS)
    ]
    stored = tmp_path / "r.jsonl.gz"
    stored.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))
    output = tmp_path / "r.md"
    argv = ["--seeds", "1", "--pair", "a:b", "--results", str(stored), "--output", str(output)]

    assert retarget.main([*argv, "--report-only"]) == 0
    assert "| cifar10: a -> b | 1 | 0.50 | 0.10 | 0.20 | 0.30 |" in output.read_text()
    with pytest.raises(SystemExit) as error:
        retarget.main(argv)  # would append to a gzipped file
    assert error.value.code == 2
