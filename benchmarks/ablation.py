"""DPPSampler's design choices switched off one at a time, on NAS-Bench-201 (an ablation).

Each ablation changes one setting behind a choice ``docs/sampler.md`` explains (local steps
beside the whole-space acquisition, the initial design, the floor model of untrainable
networks) and runs ``DPPSampler (cheap costs)`` exactly as ``benchmarks/nb201.py`` does, same
problems, seeds and hypervolume gap. The default runs in the same invocation, and every table
divides each ablation's median gap by the default's: above 1, the shipped choice is the better
one on that problem.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.ablation --seeds 10 --jobs 2 \\
        --problem cifar10:raspi4:error,latency \\
        --problem cifar10:raspi4:error,latency,params \\
        --problem imagenet16-120:pixel3:error,latency,params \\
        --results runs/sampler/ablation.jsonl --output docs/benchmarks-ablation.md

Runs go to ``--jobs`` worker processes and are appended to ``--results`` as they finish; a
second call runs only what is missing there (runs of another DPPSampler source are measured
again), so a stopped benchmark loses only the runs in flight. A setting is applied around one
run and restored after it (:func:`applied`), so a worker process that runs several ablations
one after another measures each alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
import importlib
import json
import os
from pathlib import Path
import platform
import shlex
import sys
import time
from typing import Any

from benchmarks._nb201_report import gap_summary
from benchmarks._nb201_run import RunSpec, read_records, run, task_of
from benchmarks._nb201_samplers import sampler_source_hash
from benchmarks._nb201_table import DEFAULT_TABLE, check_objectives
from benchmarks.nb201 import run_all

SAMPLER = "dpp-cheap"
"""The sampler every ablation changes: DPPSampler with the costs as cheap objectives."""


@dataclass(frozen=True)
class Ablation:
    """One change to DPPSampler: ``settings`` are ``(module, attribute, value)`` triples."""

    what: str
    settings: tuple[tuple[str, str, Any], ...] = ()


_GENERIC = "optuna_devnas.samplers._generic"
_RANKING = "optuna_devnas.samplers._ranking"
_OPTIONS = "benchmarks._nb201_samplers"

ABLATIONS: dict[str, Ablation] = {
    "default": Ablation("DPPSampler as shipped"),
    "no-local-steps": Ablation(
        "every proposal ranks the whole space by expected hypervolume improvement "
        "(`_generic.LOCAL_EVERY` = 10^9 instead of 2: no local steps)",
        ((_GENERIC, "LOCAL_EVERY", 10**9),),
    ),
    "local-every-3": Ablation(
        "every third proposal is a local step instead of every second "
        "(`_generic.LOCAL_EVERY` = 3)",
        ((_GENERIC, "LOCAL_EVERY", 3),),
    ),
    "startup-5": Ablation(
        "5 initial spread-out trials instead of 10 (`n_startup_trials=5`)",
        ((_OPTIONS, "DPP_OPTIONS", {"n_startup_trials": 5}),),
    ),
    "no-floor-model": Ablation(
        "untrainable networks are modelled with the rest, no floor classifier "
        "(`_ranking.FLOOR_MIN_TRIALS` = 10^9)",
        ((_RANKING, "FLOOR_MIN_TRIALS", 10**9),),
    ),
}


@contextmanager
def applied(settings: Sequence[tuple[str, str, Any]]) -> Iterator[None]:
    """Set each ``module.attribute`` to its value inside the block, and restore it after.

    Only attributes that exist may be set: a renamed constant fails here instead of
    silently measuring the default.
    """
    saved: list[tuple[Any, str, Any]] = []
    try:
        for module_name, attribute, value in settings:
            module = importlib.import_module(module_name)
            if not hasattr(module, attribute):
                raise AttributeError(f"{module_name} has no attribute {attribute!r} to set.")
            saved.append((module, attribute, getattr(module, attribute)))
            setattr(module, attribute, value)
        yield
    finally:
        for module, attribute, value in reversed(saved):
            setattr(module, attribute, value)


@dataclass(frozen=True)
class Task:
    ablation: str
    spec: RunSpec

    def key(self) -> tuple[str, str, str, str, int]:
        s = self.spec
        return (self.ablation, s.dataset, s.device, task_of(s.objectives), s.seed)


def ablation_run(task: Task) -> dict[str, Any]:
    """One run of ``task.spec`` with ``task.ablation``'s settings applied around it."""
    with applied(ABLATIONS[task.ablation].settings):
        record = run(task.spec)
    record["ablation"] = task.ablation
    return record


def record_key(record: dict[str, Any]) -> tuple[str, str, str, str, int]:
    return (
        record["ablation"],
        record["dataset"],
        record["device"],
        task_of(record["objectives"]),
        record["seed"],
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default=str(DEFAULT_TABLE), help="the NAS-Bench-201 table")
    parser.add_argument(
        "--problem",
        action="append",
        required=True,
        help="DATASET:DEVICE:OBJECTIVES, e.g. cifar10:raspi4:error,latency,params; repeatable",
    )
    parser.add_argument(
        "--ablations",
        default=",".join(ABLATIONS),
        help=f"comma-separated, of {', '.join(ABLATIONS)} (default: all)",
    )
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default 10)")
    parser.add_argument(
        "--budgets", default="25,50", help="trial counts the gap is read at (default 25,50)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--results", help="JSON-lines file the runs are appended to and read from")
    parser.add_argument("--output", help="where to write the markdown page")
    args = parser.parse_args(argv)
    args.ablation_names = [a for a in args.ablations.split(",") if a]
    unknown = [a for a in args.ablation_names if a not in ABLATIONS]
    if unknown or not args.ablation_names:
        parser.error(
            f"Got --ablations={args.ablations!r}, but expected names of {', '.join(ABLATIONS)}."
        )
    if "default" not in args.ablation_names:
        args.ablation_names.insert(0, "default")  # every ratio needs it
    try:
        args.budget_list = tuple(sorted({int(b) for b in args.budgets.split(",") if b}))
    except ValueError:
        parser.error(f"Got --budgets={args.budgets!r}, but expected positive integers.")
    if not args.budget_list or args.budget_list[0] < 1:
        parser.error(f"Got --budgets={args.budgets!r}, but expected positive integers.")
    for name, value in (("--seeds", args.seeds), ("--jobs", args.jobs)):
        if value < 1:
            parser.error(f"Got {name}={value}, but expected a positive integer.")
    if args.results and args.results.endswith(".gz"):
        parser.error(f"Got --results={args.results!r}, but runs cannot be appended to a .gz file.")
    args.problems = []
    for text in args.problem:
        parts = text.split(":")
        try:
            if len(parts) != 3:
                raise ValueError
            args.problems.append((parts[0], parts[1], check_objectives(parts[2].split(","))))
        except ValueError:
            parser.error(
                f"Got --problem={text!r}, but expected DATASET:DEVICE:OBJECTIVES with "
                "objectives 'error' and then 'latency' and/or 'params', comma-separated."
            )
    return args


def plan(args: argparse.Namespace) -> list[Task]:
    """Every run the arguments ask for: per problem and seed, each ablation in turn."""
    return [
        Task(
            name,
            RunSpec(
                table=args.table,
                dataset=dataset,
                device=device,
                sampler=SAMPLER,
                seed=seed,
                n_trials=args.budget_list[-1],
                budgets=args.budget_list,
                objectives=objectives,
            ),
        )
        for dataset, device, objectives in args.problems
        for seed in range(args.seeds)
        for name in args.ablation_names
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    tasks = plan(args)
    version = sampler_source_hash()
    stored: dict[tuple[str, str, str, str, int], dict[str, Any]] = {}
    if args.results and Path(args.results).is_file():
        for record in read_records(Path(args.results)):
            if (
                record.get("sampler_source") == version
                and not record["error"]
                and record["table"] == args.table
                and record["n_trials"] >= args.budget_list[-1]
            ):
                stored[record_key(record)] = record
    todo = [t for t in tasks if t.key() not in stored]
    print(
        f"{len(tasks)} runs planned, {len(tasks) - len(todo)} found in --results, "
        f"{len(todo)} to run with {args.jobs} job(s)",
        flush=True,
    )
    started = time.perf_counter()
    for done, record in enumerate(run_all(todo, args.jobs, ablation_run), start=1):
        stored[record_key(record)] = record
        gaps = " ".join(f"{b}:{g:.2f}" for b, g in record["gaps"].items() if g is not None)
        status = "FAILED " + record["error"].strip().splitlines()[-1] if record["error"] else ""
        elapsed = time.perf_counter() - started
        left = elapsed / done * (len(todo) - done)
        print(
            f"[{done}/{len(todo)} {elapsed:5.0f}s, ~{left:.0f}s left] {record['ablation']} "
            f"{record['dataset']}:{record['device']} {task_of(record['objectives'])} seed "
            f"{record['seed']}: gap {gaps} {status}",
            flush=True,
        )
        if args.results:
            Path(args.results).parent.mkdir(parents=True, exist_ok=True)
            with open(args.results, "a") as f:
                f.write(json.dumps(record) + "\n")
    records = [stored[t.key()] for t in tasks if t.key() in stored]
    failed = [r for r in records if r["error"]]
    text = markdown(records, args, version, argv)
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    return 1 if failed else 0


def summary(
    records: Sequence[dict[str, Any]], budgets: Sequence[int]
) -> dict[str, dict[int, tuple[float, float, float, int]]]:
    """Per ablation and budget: (median, 25th, 75th percentile, runs) of the gap over seeds.

    Every run is of one sampler, so ``gap_summary`` of each ablation's runs is the summary.
    """
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(record["ablation"], []).append(record)
    return {name: gap_summary(runs, budgets)[SAMPLER] for name, runs in grouped.items()}


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown(
    records: Sequence[dict[str, Any]],
    args: argparse.Namespace,
    version: str,
    argv: Sequence[str] | None,
) -> str:
    """The page: what each ablation changes, then per problem the gaps and the ratios."""
    budgets = args.budget_list
    command = shlex.join(
        ["OMP_NUM_THREADS=1", ".venv/bin/python", "-m", "benchmarks.ablation", *(argv or [])]
    )
    lines = [
        "# Ablations: DPPSampler's design choices on NAS-Bench-201",
        "",
        "Written by `benchmarks/ablation.py` from the runs it made or read back; nothing is "
        "typed in by hand. Each ablation switches one choice of [the sampler](sampler.md) "
        "off; everything else is `DPPSampler (cheap costs)` as in "
        "[the sampler benchmarks](benchmarks-sampler.md): same problems, seeds and "
        "hypervolume gap (lower is better).",
        "",
        "```",
        command,
        "```",
        "",
        f"DPPSampler's source hash {version}; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {args.jobs} job(s).",
        "",
        _row(["ablation", "what it changes"]),
        _row(["---", "---"]),
    ]
    lines += [_row([name, ABLATIONS[name].what]) for name in args.ablation_names]
    verdicts: dict[str, list[float]] = {name: [] for name in args.ablation_names}
    for dataset, device, objectives in args.problems:
        mine = [
            r
            for r in records
            if (r["dataset"], r["device"], tuple(r["objectives"])) == (dataset, device, objectives)
        ]
        if not mine:
            continue
        table = summary(mine, budgets)
        seeds = {name: sum(r["ablation"] == name for r in mine) for name in args.ablation_names}
        lines += [
            "",
            f"## {dataset} vs {device}: {' vs '.join(objectives)}",
            "",
            "Median gap in % [25th, 75th percentile], and the median divided by the default's "
            "(above 1: the default is better).",
            "",
            _row(
                [
                    "ablation",
                    "seeds",
                    *[f"{b} trials" for b in budgets],
                    *[f"ratio at {b}" for b in budgets],
                ]
            ),
            _row(["---"] * (2 + 2 * len(budgets))),
        ]
        default = table.get("default", {})
        for name in args.ablation_names:
            cells = table.get(name, {})
            gaps = [
                f"{cells[b][0]:.2f} [{cells[b][1]:.2f}, {cells[b][2]:.2f}]" if b in cells else "-"
                for b in budgets
            ]
            ratios = []
            for b in budgets:
                if b in cells and b in default and default[b][0] > 0:
                    ratios.append(f"{cells[b][0] / default[b][0]:.2f}")
                else:
                    ratios.append("-")
            if budgets[-1] in cells and budgets[-1] in default and default[budgets[-1]][0] > 0:
                verdicts[name].append(cells[budgets[-1]][0] / default[budgets[-1]][0])
            lines.append(_row([name, str(seeds[name]), *gaps, *ratios]))
    lines += ["", f"## Verdict at {budgets[-1]} trials", ""]
    for name in args.ablation_names:
        if name == "default" or not verdicts[name]:
            continue
        worse = sum(r > 1 for r in verdicts[name])
        lines.append(
            f"- {name}: worse than the default on {worse} of {len(verdicts[name])} problems "
            f"(ratios {', '.join(f'{r:.2f}' for r in verdicts[name])})"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
