"""DPPSampler against Optuna's samplers on NAS-Bench-201: hypervolume gap and time per trial.

Each run searches NAS-Bench-201's cell space (six edges, five operations each, suggested
define-by-run) for the Pareto front of test error against device latency, read from the table
in ``../shared/data/nb201/`` (see its README). The hypervolume gap is the one of
``../shared/DESIGN.md`` section 9: both objectives min-max normalized over the whole table,
reference point 1.1, gap = 100 x (1 - HV(found) / HV(true front)), read along each run at every
budget. The sampler's own time per trial is read along the same runs (and along longer timing
runs for 500 trials).

Usage (from the repository root)::

    nice -n 10 .venv/bin/python -m benchmarks.nb201 --seeds 10 --jobs 2 \\
        --results benchmarks/results/nb201.jsonl --output benchmarks/results/nb201.md

``--results`` keeps every finished run (JSON lines) and, with ``--resume``, skips runs already
there, so a long benchmark can be stopped and continued. Repeat ``--results`` to let several
processes append each to its own file: new runs go to the first, runs are found in all. A
stored DPPSampler run counts only if the sampler's source is unchanged since. The tables are
always recomputed from the records.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
import itertools
import json
import multiprocessing
import os
from pathlib import Path
import platform
import time
from typing import Any

from benchmarks._nb201_report import markdown
from benchmarks._nb201_run import (
    RunSpec,
    gaps_at,
    problem_for,
    read_records,
    run,
    task_of,
    time_at,
)
from benchmarks._nb201_samplers import OURS, SAMPLERS, sampler_source_hash
from benchmarks._nb201_table import DEFAULT_TABLE, check_objectives

DEFAULT_PROBLEMS = ("cifar10:raspi4", "cifar100:hwnb360_c100_pixel_litert_lat_ms_median")
# Rough relative cost, to start the slow runs first so the pool does not end on one long run.
_COST = {
    "botorch": 100.0,
    "gp": 10.0,
    "dpp": 10.0,
    "dpp-cheap": 10.0,
    "dpp-pareto": 10.0,
    "nsga2": 1.0,
}


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part)


def common_parser(
    description: str,
    *,
    table: str,
    budgets: tuple[int, ...],
    samplers: str,
    timing_samplers: str,
) -> argparse.ArgumentParser:
    """The arguments every tabular benchmark takes (``benchmarks/cellspace.py`` shares them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--table", default=table, help=f"the table (default {table})")
    parser.add_argument(
        "--objectives",
        action="append",
        help="comma-separated, 'error' first, then 'latency' and/or 'params'; repeatable "
        "(one task each). Default: error,latency",
    )
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="run seeds FIRST..N-1 only (split one --seeds N between processes)",
    )
    parser.add_argument("--budgets", type=_ints, default=budgets)
    parser.add_argument("--samplers", default=samplers, help="comma-separated")
    parser.add_argument("--botorch-trials", type=int, default=50)
    parser.add_argument("--botorch-seeds", type=int, default=3)
    parser.add_argument("--timing-trials", type=int, default=500)
    parser.add_argument("--timing-samplers", default=timing_samplers)
    parser.add_argument("--timing-seeds", type=int, default=1, help="seeds run to timing-trials")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (runs in parallel)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument(
        "--results", action="append", help="JSON-lines file of finished runs; repeatable"
    )
    parser.add_argument("--resume", action="store_true", help="skip runs found in --results")
    parser.add_argument("--profile", action="store_true", help="cProfile the DPPSampler runs")
    parser.add_argument("--output", help="write the markdown tables to this file")
    parser.add_argument(
        "--report-only", action="store_true", help="tables from --results only, run nothing"
    )
    return parser


def check_common(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Validate and normalise what :func:`common_parser` read."""
    if not 0 <= args.first_seed < args.seeds:
        parser.error(f"--first-seed must be in [0, --seeds); got {args.first_seed}")
    try:
        args.tasks = [
            check_objectives([o for o in text.split(",") if o])
            for text in (args.objectives or ["error,latency"])
        ]
    except ValueError as error:
        parser.error(str(error))
    args.samplers = [s for s in args.samplers.split(",") if s]
    unknown = [s for s in args.samplers if s not in SAMPLERS]
    if unknown:
        parser.error(f"unknown samplers {unknown}; known: {list(SAMPLERS)}")
    if args.report_only:
        args.resume = True
    if args.resume and not args.results:
        parser.error("--resume and --report-only need --results")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common_parser(
        __doc__.split("\n\n")[0],
        table=str(DEFAULT_TABLE),
        budgets=(25, 50, 100, 200),
        samplers=",".join(s for s in SAMPLERS if s != "dpp-pareto"),
        timing_samplers="dpp-cheap,dpp,gp",
    )
    parser.add_argument(
        "--problem",
        action="append",
        help="DATASET:DEVICE (cifar10|cifar100|imagenet16-120 : a help_lat_ms_ suffix or a "
        f"latency column); repeatable. Default: {' and '.join(DEFAULT_PROBLEMS)}",
    )
    parser.add_argument("--dataset", help="shortcut for one --problem, with --device")
    parser.add_argument("--device", help="shortcut for one --problem, with --dataset")
    args = parser.parse_args(argv)
    check_common(parser, args)
    if (args.dataset is None) != (args.device is None):
        parser.error("--dataset and --device go together")
    problems = list(args.problem or [])
    if args.dataset is not None:
        problems.append(f"{args.dataset}:{args.device}")
    args.problems = [tuple(p.split(":", 1)) for p in (problems or DEFAULT_PROBLEMS)]
    args.kind = "nb201"
    return args


def plan(args: argparse.Namespace) -> list[RunSpec]:
    """Every run the arguments ask for, the slow ones first."""
    budgets = tuple(sorted(args.budgets))
    timing = set(args.timing_samplers.split(","))
    specs = []
    for (dataset, device), objectives in itertools.product(args.problems, args.tasks):
        for sampler in args.samplers:
            seeds = args.seeds if sampler != "botorch" else min(args.seeds, args.botorch_seeds)
            for seed in range(args.first_seed, seeds):
                n_trials = budgets[-1]
                if sampler == "botorch":
                    n_trials = min(n_trials, args.botorch_trials)
                elif sampler in timing and seed < args.timing_seeds:
                    n_trials = max(n_trials, args.timing_trials)
                specs.append(
                    RunSpec(
                        table=args.table,
                        dataset=dataset,
                        device=device,
                        sampler=sampler,
                        seed=seed,
                        n_trials=n_trials,
                        budgets=budgets,
                        objectives=objectives,
                        kind=args.kind,
                        threads=args.threads,
                        profile=args.profile and sampler in OURS,
                    )
                )
    return sorted(specs, key=lambda s: -_COST.get(s.sampler, 0.5) * s.n_trials)


def _load(path: str | None) -> list[dict[str, Any]]:
    if not path or not Path(path).is_file():
        return []
    return read_records(Path(path))


def _progress(done: int, total: int, record: dict[str, Any], started: float) -> str:
    gaps = " ".join(f"{b}:{g:.2f}" for b, g in record["gaps"].items() if g is not None)
    at = time_at(record, min(record["completed"], 200))
    status = "FAILED " + record["error"].strip().splitlines()[-1] if record["error"] else "ok"
    return (
        f"[{done}/{total} {time.perf_counter() - started:6.0f}s] {record['dataset']}:"
        f"{record['device']} {task_of(record_objectives(record))} {record['sampler']} seed "
        f"{record['seed']}: {record['completed']} "
        f"trials in {record['total_s']:.0f}s, gap {gaps}, "
        f"{(at or 0):.3f}s/trial near the end, {record['duplicates']} repeats, {status}"
    )


def run_all(
    specs: Sequence[Any],
    jobs: int,
    function: Callable[[Any], dict[str, Any]] = run,
    needed: Callable[[Any], bool] | None = None,
) -> Iterator[dict[str, Any]]:
    """``function`` of each of ``specs`` as they finish: here for one job, else in a pool.

    Specs are started in order, at most ``jobs`` at a time, and a spec for which ``needed``
    says ``False`` when its turn comes is skipped (a run beside this one may have done it).
    """
    waiting = iter(specs)

    def next_spec() -> Any | None:
        for spec in waiting:
            if needed is None or needed(spec):
                return spec
        return None

    if jobs <= 1:
        while (spec := next_spec()) is not None:
            yield function(spec)
        return
    context = multiprocessing.get_context("spawn")  # no fork after torch has started threads
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        running: set[Future[dict[str, Any]]] = set()
        while True:
            while len(running) < jobs and (spec := next_spec()) is not None:
                running.add(pool.submit(function, spec))
            if not running:
                return
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()


def record_objectives(record: dict[str, Any]) -> tuple[str, ...]:
    return tuple(record.get("objectives", ("error", "latency")))


def record_key(record: dict[str, Any]) -> tuple[str, str, str, str, str, int]:
    """The :meth:`RunSpec.key` of a stored run (runs stored before objectives had none)."""
    return (
        record.get("kind", "nb201"),
        record["dataset"],
        record["device"],
        task_of(record_objectives(record)),
        record["sampler"],
        record["seed"],
    )


def main(argv: list[str] | None = None) -> int:
    return execute(parse_args(argv))


def execute(args: argparse.Namespace) -> int:
    """Plan, run (or read back) and report the runs ``args`` asks for."""
    specs = plan(args)
    stored = [r for path in args.results or [] for r in _load(path)] if args.resume else []
    # Reuse a stored run only if it finished without error, on this table, with the current
    # DPPSampler source (a changed sampler must be measured again); the longest run wins.
    version = sampler_source_hash()
    done_keys = {
        record_key(r): r
        for r in sorted(stored, key=lambda r: r["n_trials"])
        if r["table"] == args.table
        and not r["error"]
        and (args.report_only or r["sampler"] not in OURS or r.get("sampler_source") == version)
    }
    records = []
    todo = []
    for spec in specs:
        old = done_keys.get(spec.key())
        if old is not None and (old["n_trials"] >= spec.n_trials or args.report_only):
            records.append(old)
        elif not args.report_only:
            todo.append(spec)
    print(
        f"{len(specs)} runs planned, {len(specs) - len(todo)} found in --results, "
        f"{len(todo)} to run with {args.jobs} job(s)",
        flush=True,
    )
    started = time.perf_counter()
    for done, record in enumerate(run_all(todo, args.jobs), start=1):
        records.append(record)
        print(_progress(done, len(todo), record, started), flush=True)
        if args.results:
            Path(args.results[0]).parent.mkdir(parents=True, exist_ok=True)
            with open(args.results[0], "a") as f:
                f.write(json.dumps(record) + "\n")
    elapsed = time.perf_counter() - started
    budgets = tuple(sorted(args.budgets))
    sections = [
        f"Measured with optuna {_version('optuna')}, optuna-integration "
        f"{_version('optuna_integration')}, botorch {_version('botorch')}, torch "
        f"{_version('torch')}, Python {platform.python_version()}, {os.cpu_count()} CPUs "
        f"(shared); {len(todo)} runs took {elapsed:.0f} s with {args.jobs} job(s).",
        "",
    ]
    for (dataset, device), objectives in itertools.product(args.problems, args.tasks):
        mine = [
            r
            for r in records
            if (r["dataset"], r["device"], record_objectives(r)) == (dataset, device, objectives)
        ]
        missing = [b for b in budgets for r in mine if str(b) not in r["gaps"]]
        problem = problem_for(args.table, dataset, device, objectives, args.kind)
        if missing:  # records from a run with other budgets: read the gaps from their values
            for r in mine:
                r["gaps"].update(gaps_at(problem, r["values"], budgets))
        sections.append(markdown(mine, budgets, title=problem.title))
    text = "\n".join(sections)
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    return 0


def _version(module: str) -> str:
    from importlib.metadata import version

    names = {"optuna_integration": "optuna-integration"}
    return version(names.get(module, module))


if __name__ == "__main__":
    raise SystemExit(main())
