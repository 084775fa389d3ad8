"""Markdown tables of NAS-Bench-201 runs: hypervolume gaps, ratios to the best peer, timings.

Everything printed is computed from the run records handed in (measured in the same
invocation or read back from its results file), never from stored figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks._nb201_run import time_at
from benchmarks._nb201_samplers import LABELS, PEERS

TIMING_POINTS = (25, 50, 100, 200, 500)


def _by_sampler(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(record["sampler"], []).append(record)
    return {name: grouped[name] for name in LABELS if name in grouped}


def gap_summary(
    records: Sequence[dict[str, Any]], budgets: Sequence[int]
) -> dict[str, dict[int, tuple[float, float, float, int]]]:
    """(median, 25th, 75th percentile, number of runs) of the gap per sampler and budget."""
    summary: dict[str, dict[int, tuple[float, float, float, int]]] = {}
    for name, runs in _by_sampler(records).items():
        summary[name] = {}
        for b in budgets:
            gaps = [r["gaps"][str(b)] for r in runs if r["gaps"].get(str(b)) is not None]
            if gaps:
                q25, q50, q75 = np.percentile(gaps, [25, 50, 75])
                summary[name][b] = (float(q50), float(q25), float(q75), len(gaps))
    return summary


def best_peers(
    summary: dict[str, dict[int, tuple[float, float, float, int]]], budgets: Sequence[int]
) -> dict[int, tuple[str, float]]:
    """The peer with the lowest median gap at each budget (only peers measured at it)."""
    best: dict[int, tuple[str, float]] = {}
    for b in budgets:
        measured = [(summary[p][b][0], p) for p in PEERS if p in summary and b in summary[p]]
        if measured:
            gap, name = min(measured)
            best[b] = (name, gap)
    return best


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown(records: Sequence[dict[str, Any]], budgets: Sequence[int], title: str = "") -> str:
    """Gap table, ratio table, timing table and notes for the runs of one data set/device."""
    if not records:
        return ""
    first = records[0]
    lines = [
        f"### {title or first.get('title') or first['dataset']}",
        "",
        "Hypervolume gap in % (median over seeds, [25th, 75th percentile]); lower is better.",
        "",
        _row(["sampler", "seeds", *[f"{b} trials" for b in budgets]]),
        _row(["---"] * (len(budgets) + 2)),
    ]
    summary = gap_summary(records, budgets)
    grouped = _by_sampler(records)
    for name, cells in summary.items():
        row = [LABELS[name], str(len(grouped[name]))]
        for b in budgets:
            if b in cells:
                median, q25, q75, _ = cells[b]
                row.append(f"{median:.2f} [{q25:.2f}, {q75:.2f}]")
            else:
                row.append("-")
        lines.append(_row(row))
    best = best_peers(summary, budgets)
    lines += [
        "",
        "Median gap divided by the best peer's median gap at the same budget (< 1: better "
        "than every peer).",
        "",
        _row(["sampler", *[f"{b} trials" for b in budgets]]),
        _row(["---"] * (len(budgets) + 1)),
        _row(
            [
                "best peer",
                *[
                    f"{LABELS[best[b][0]]} ({best[b][1]:.2f})" if b in best else "-"
                    for b in budgets
                ],
            ]
        ),
    ]
    for name, cells in summary.items():
        ratios = [
            f"{cells[b][0] / best[b][1]:.2f}"
            if b in cells and b in best and best[b][1] > 0
            else "-"
            for b in budgets
        ]
        lines.append(_row([LABELS[name], *ratios]))
    lines += [
        "",
        "Sampler time per trial in seconds (ask + suggests + tell, one torch thread): median "
        "over runs of the median of the 5 trials ending with the n-th; process CPU time "
        "(wall-clock in brackets: the machine is shared, so wall-clock is inflated by other "
        "jobs and CPU time is the figure to compare). Whole run: median wall-clock seconds.",
        "",
        _row(["sampler", *[f"at {n} trials" for n in TIMING_POINTS], "whole run", "trials/run"]),
        _row(["---"] * (len(TIMING_POINTS) + 3)),
    ]
    for name, runs in grouped.items():
        row = [LABELS[name]]
        for n in TIMING_POINTS:
            wall = [t for r in runs if (t := time_at(r, n)) is not None]
            cpu = [t for r in runs if (t := time_at(r, n, key="cpu")) is not None]
            row.append(
                f"{np.median(cpu):.3f} ({np.median(wall):.3f}), {len(wall)} runs"
                if wall
                else "not run"
            )
        row.append(f"{np.median([r['total_s'] for r in runs]):.0f}")
        row.append("/".join(sorted({str(r["completed"]) for r in runs}, key=int)))
        lines.append(_row(row))
    notes = []
    for name, runs in grouped.items():
        failed = [r for r in runs if r["error"]]
        if failed:
            last = failed[0]["error"].strip().splitlines()[-1]
            notes.append(f"- {LABELS[name]}: {len(failed)} of {len(runs)} runs failed: `{last}`")
        sources = sorted({r["sampler_source"] for r in runs if r.get("sampler_source")})
        if sources:
            notes.append(f"- {LABELS[name]}: sampler source hash {', '.join(sources)}")
        duplicates = [r["duplicates"] for r in runs]
        if any(duplicates):
            notes.append(
                f"- {LABELS[name]}: repeated architectures per run: median "
                f"{np.median(duplicates):.0f}, max {max(duplicates)}"
            )
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines) + "\n"
