"""A search retargeted to a new device against a fresh search there, on NAS-Bench-201.

For each device pair (A, B) and seed: ``DPPSampler`` searches device A (test error vs A's
latency, latency as a cheap objective) for ``--source-trials`` trials; ``retarget`` copies the
study to device B (errors kept, latencies read from B's column) and ``DPPSampler`` trains
``--more`` trials for B. The hypervolume gap on B (``../shared/DESIGN.md`` section 9, the same as
``benchmarks/nb201.py``) is read for the copies alone and after the new trials, beside a fresh
``DPPSampler`` search on B (read at ``--fresh`` budgets, from ``benchmarks/nb201.py`` records of
the same problem and seed when ``--results`` holds them, else run here) and the best of
Random, TPE and NSGA-II at the largest budget.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.retarget --seeds 10 --jobs 2 \\
        --pair titan_rtx_1:raspi4 --pair raspi4:pixel3 --pair pixel3:eyeriss \\
        --results runs/sampler/retarget.jsonl --results runs/sampler/c10.jsonl \\
        --output runs/sampler/retarget.md

Runs go to ``--jobs`` worker processes and are appended to the first ``--results`` file as they
finish (the others are only read, gzipped where they end in ``.gz``), so a stopped benchmark
loses only the runs in flight; ``--report-only`` then writes the table from the seeds complete
so far (the table says how many each pair has).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import os
from pathlib import Path
import platform
import time
from typing import Any
import warnings

import numpy as np
import optuna

from benchmarks._nb201_run import RunSpec, problem_for, read_records, run
from benchmarks._nb201_samplers import sampler_source_hash
from benchmarks._nb201_table import DEFAULT_TABLE, NB201Problem
from benchmarks.nb201 import run_all

PEERS = ("random", "tpe", "nsga2")


@dataclass(frozen=True)
class Pair:
    dataset: str
    source: str
    target: str

    @property
    def label(self) -> str:
        return f"{self.dataset}: {self.source} -> {self.target}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument(
        "--pair", action="append", help="SOURCE:TARGET devices (help_lat_ms_ suffixes)"
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--source-trials", type=int, default=100)
    parser.add_argument("--more", type=int, default=25, help="new trials on the target")
    parser.add_argument("--fresh", default="100,200", help="budgets of the fresh search on B")
    parser.add_argument(
        "--results", action="append", help="JSON-lines files: the first is written; repeatable"
    )
    parser.add_argument("--output", help="write the markdown table here")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (runs in parallel)")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: report each pair over the seeds --results holds complete",
    )
    args = parser.parse_args(argv)
    if args.results and args.results[0].endswith(".gz") and not args.report_only:
        parser.error(
            f"--results: the first file is written, so not gzipped; got {args.results[0]}"
        )
    if args.jobs < 1:
        parser.error(f"--jobs: expected at least 1, got {args.jobs}")
    pairs = args.pair or ["titan_rtx_1:raspi4", "raspi4:pixel3", "pixel3:eyeriss"]
    args.pairs = [Pair(args.dataset, *p.split(":", 1)) for p in pairs]
    args.fresh = tuple(int(b) for b in args.fresh.split(","))
    return args


def retarget_run(pair: Pair, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Search A, retarget to B, train ``--more`` on B; the gaps on B along the way."""
    from optuna_devnas import retarget
    from optuna_devnas.samplers import DPPSampler

    a = problem_for(args.table, pair.dataset, pair.source)
    b = problem_for(args.table, pair.dataset, pair.target)
    assert isinstance(a, NB201Problem) and isinstance(b, NB201Problem)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = optuna.create_study(
            directions=["minimize", "minimize"],
            sampler=DPPSampler(cheap_objectives={1: a.latency}, seed=seed),
        )
        source.optimize(lambda trial: a(trial), n_trials=args.source_trials)
        target = optuna.create_study(
            directions=["minimize", "minimize"],
            sampler=DPPSampler(cheap_objectives={1: b.latency}, seed=seed),
        )
        copied = retarget(source, target, objectives={1: b.latency})
        after_copy = time.perf_counter()
        target.optimize(lambda trial: b(trial), n_trials=args.more)
    values = [list(t.values) for t in target.trials]
    keys = [b.arch_of(t.params) for t in target.trials]
    return {
        "kind": "retarget",
        "dataset": pair.dataset,
        "source": pair.source,
        "target": pair.target,
        "seed": seed,
        "copied": copied,
        "gap_copied": b.hypervolume_gap(np.array(values[:copied])),
        "gap_more": b.hypervolume_gap(np.array(values)),
        "new_repeats": len(keys) - len(set(keys)),
        "values": values,
        "source_s": after_copy - started,
        "more_s": time.perf_counter() - after_copy,
        "sampler_source": sampler_source_hash(),
    }


def _load(paths: list[str]) -> list[dict[str, Any]]:
    """The records of the JSON-lines files ``paths`` (gzipped where they end in ``.gz``)."""
    return [r for path in paths if Path(path).is_file() for r in read_records(Path(path))]


def _fresh_records(
    stored: list[dict[str, Any]], args: argparse.Namespace, pair: Pair, version: str
) -> dict[tuple[str, int], dict[str, Any]]:
    """Stored ``benchmarks/nb201.py`` runs on B (DPPSampler with cheap latency, the peers)."""
    found = {}
    for r in stored:
        if (
            r.get("kind", "nb201") == "nb201"
            and (r["dataset"], r["device"]) == (pair.dataset, pair.target)
            and tuple(r.get("objectives", ("error", "latency"))) == ("error", "latency")
            and not r["error"]
            and (r["sampler"] != "dpp-cheap" or r.get("sampler_source") == version)
        ):
            key = (r["sampler"], r["seed"])
            if key not in found or r["n_trials"] > found[key]["n_trials"]:
                found[key] = r
    return found


def _task(task: tuple[str, Any]) -> dict[str, Any]:
    """One run in a worker: ``("retarget", (pair, seed, args))`` or ``("fresh", RunSpec)``."""
    kind, payload = task
    if kind == "retarget":
        return retarget_run(*payload)
    return run(payload)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = args.results or []
    stored = _load(results)
    version = sampler_source_hash()
    mine: dict[Pair, dict[int, dict[str, Any]]] = {}
    fresh: dict[Pair, dict[tuple[str, int], dict[str, Any]]] = {}
    tasks: list[tuple[str, Any]] = []
    planned: set[tuple[Any, ...]] = set()
    for pair in args.pairs:
        fresh[pair] = _fresh_records(stored, args, pair, version)
        mine[pair] = {
            r["seed"]: r
            for r in stored
            if r.get("kind") == "retarget"
            and (r["dataset"], r["source"], r["target"])
            == (pair.dataset, pair.source, pair.target)
            and r["sampler_source"] == version
        }
        for seed in range(0 if args.report_only else args.seeds):
            if seed not in mine[pair]:
                tasks.append(("retarget", (pair, seed, args)))
            for sampler in ("dpp-cheap", *PEERS):
                record = fresh[pair].get((sampler, seed))
                spec = RunSpec(
                    table=args.table,
                    dataset=pair.dataset,
                    device=pair.target,
                    sampler=sampler,
                    seed=seed,
                    n_trials=max(args.fresh),
                    budgets=args.fresh,
                )
                if (record is None or record["n_trials"] < spec.n_trials) and (
                    spec.key() not in planned  # two pairs with one target share their runs
                ):
                    planned.add(spec.key())
                    tasks.append(("fresh", spec))

    growing = [path for path in results if not path.endswith(".gz")]

    def needed(task: tuple[str, Any]) -> bool:
        # Read the plain files again (gzipped ones are never written): a benchmark run beside
        # this one may have added this fresh search meanwhile (no run is repeated).
        kind, spec = task
        if kind != "fresh":
            return True
        pair = next(p for p in args.pairs if (p.dataset, p.target) == (spec.dataset, spec.device))
        found = _fresh_records(_load(growing), args, pair, version).get((spec.sampler, spec.seed))
        if found is None or found["n_trials"] < spec.n_trials:
            return True
        _add_fresh(fresh, args, found)
        return False

    print(f"{len(tasks)} runs to do with {args.jobs} job(s)", flush=True)
    started = time.perf_counter()
    for done, record in enumerate(run_all(tasks, args.jobs, _task, needed), start=1):
        if results:
            with open(results[0], "a") as f:
                f.write(json.dumps(record) + "\n")
        if record.get("kind") == "retarget":
            pair = Pair(record["dataset"], record["source"], record["target"])
            mine[pair][record["seed"]] = record
            what = f"{pair.label} retargeted"
        else:
            _add_fresh(fresh, args, record)
            what = f"{record['dataset']}: {record['device']} fresh {record['sampler']}"
        print(
            f"[{done}/{len(tasks)} {time.perf_counter() - started:5.0f}s] {what} seed "
            f"{record['seed']} done",
            flush=True,
        )
    rows = []
    for pair in args.pairs:
        seeds = [s for s in range(args.seeds) if complete(s, mine[pair], fresh[pair], args)]
        for seed in seeds:
            r, dpp = mine[pair][seed], fresh[pair][("dpp-cheap", seed)]
            print(
                f"{pair.label} seed {seed}: copied {r['copied']} gap {r['gap_copied']:.2f}, "
                f"+{args.more} gap {r['gap_more']:.2f}; fresh DPPSampler "
                + ", ".join(f"{b}: {dpp['gaps'][str(b)]:.2f}" for b in args.fresh)
            )
        if seeds:
            rows.append(report_row(pair, args, seeds, mine[pair], fresh[pair]))
    text = markdown(rows, args, version)
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


def _add_fresh(
    fresh: dict[Pair, dict[tuple[str, int], dict[str, Any]]],
    args: argparse.Namespace,
    record: dict[str, Any],
) -> None:
    """File a fresh search's record under every pair whose target it searched."""
    for pair in args.pairs:
        if (pair.dataset, pair.target) == (record["dataset"], record["device"]):
            fresh[pair][(record["sampler"], record["seed"])] = record


def complete(
    seed: int,
    mine: dict[int, dict[str, Any]],
    fresh: dict[tuple[str, int], dict[str, Any]],
    args: argparse.Namespace,
) -> bool:
    """Whether ``seed`` has its retargeted run and every fresh run at the largest budget."""
    return seed in mine and all(
        (sampler, seed) in fresh and fresh[(sampler, seed)]["n_trials"] >= max(args.fresh)
        for sampler in ("dpp-cheap", *PEERS)
    )


def report_row(
    pair: Pair,
    args: argparse.Namespace,
    seeds: list[int],
    mine: dict[int, dict[str, Any]],
    fresh: dict[tuple[str, int], dict[str, Any]],
) -> dict[str, Any]:
    largest = str(max(args.fresh))
    peers = {p: float(np.median([fresh[(p, s)]["gaps"][largest] for s in seeds])) for p in PEERS}
    best_peer = min(peers, key=lambda p: peers[p])
    return {
        "pair": pair.label,
        "seeds": len(seeds),
        "copied": float(np.median([mine[s]["gap_copied"] for s in seeds])),
        "more": float(np.median([mine[s]["gap_more"] for s in seeds])),
        "fresh": {
            b: float(np.median([fresh[("dpp-cheap", s)]["gaps"][str(b)] for s in seeds]))
            for b in args.fresh
        },
        "peer": (best_peer, peers[best_peer]),
        "curve": _curve(pair, args, [mine[s] for s in seeds]),
        "repeats": int(sum(mine[s]["new_repeats"] for s in seeds)),
        "seconds": float(np.median([mine[s]["source_s"] + mine[s]["more_s"] for s in seeds])),
    }


def _curve(pair: Pair, args: argparse.Namespace, runs: list[dict[str, Any]]) -> dict[int, float]:
    """Median gap on the target after 0, 5, 10, ... and ``--more`` new trials.

    Empty where a record has no values to read it from (records written before they had them).
    """
    if not runs or any("values" not in r for r in runs):
        return {}
    problem = problem_for(args.table, pair.dataset, pair.target)
    steps = sorted({*range(0, args.more, 5), args.more})
    return {
        k: float(
            np.median(
                [problem.hypervolume_gap(np.array(r["values"][: r["copied"] + k])) for r in runs]
            )
        )
        for k in steps
    }


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace, version: str) -> str:
    first, last = min(args.fresh), max(args.fresh)
    src, more = args.source_trials, args.more
    lines = [
        f"Measured at DPPSampler source hash {version}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}.",
        "",
        "Median hypervolume gap on the target device in % over the seeds (lower is "
        f"better): the {src} copies of a {src}-trial search of the source device, after {more} "
        f"more trials on the target, a fresh DPPSampler search of the target at {first} and "
        f"{last} trials, and the best of {', '.join(PEERS)} at {last}; every column of a row "
        "from the same seeds.",
        "",
        f"| pair | seeds | copies ({src} + 0) | retargeted ({src} + {more}) | fresh at {first} | "
        f"fresh at {last} | best peer at {last} | retargeted / fresh at {first} | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    if not rows:
        lines.append("| (no pair has a complete seed yet) | | | | | | | | |")
    for row in rows:
        ratio = row["more"] / row["fresh"][first] if row["fresh"][first] > 0 else float("nan")
        met = "met" if row["more"] <= row["fresh"][first] else "missed"
        lines.append(
            f"| {row['pair']} | {row['seeds']} | {row['copied']:.2f} | {row['more']:.2f} | "
            f"{row['fresh'][first]:.2f} | {row['fresh'][last]:.2f} | "
            f"{row['peer'][1]:.2f} ({row['peer'][0]}) | {ratio:.2f} | **{met}** |"
        )
    curves = [row for row in rows if row.get("curve")]
    if curves:
        steps = ", ".join(str(k) for k in curves[0]["curve"])
        lines += ["", f"Median gap on the target after {steps} new trials:", ""]
        for row in curves:
            gaps = ", ".join(f"{g:.2f}" for g in row["curve"].values())
            lines.append(f"- {row['pair']}: {gaps}")
    if rows:
        lines.append("")
        lines.append(
            "Repeated architectures among the new trials, all pairs and seeds: "
            f"{sum(r['repeats'] for r in rows)}. Median seconds per retargeted run (source "
            f"search and new trials): {np.median([r['seconds'] for r in rows]):.0f}."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
