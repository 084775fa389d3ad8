"""One benchmark run: one sampler, one seed, one tabular problem, timed trial by trial.

Problems are NAS-Bench-201 (``kind="nb201"``, :mod:`benchmarks._nb201_table`) or the exhaustive
``CellSpace`` table (``kind="cellspace"``, :mod:`benchmarks._cellspace_problem`).

A run is a plain function of a plain :class:`RunSpec` returning a JSON-serializable dict, so it
can go to a process pool and be appended to a results file. The run drives the study with
``ask``/``tell`` so each trial's sampler time can be taken apart from the objective: a trial's
time is the wall-clock (and process CPU) time of ``study.ask()``, the six ``suggest_categorical``
calls (where relative and independent sampling happen) and ``study.tell()`` (where samplers'
``after_trial`` runs). The table look-up inside is a dictionary access (microseconds).
"""

from __future__ import annotations

from collections.abc import Sequence
import cProfile
from dataclasses import asdict, dataclass
import gzip
import io
import json
from pathlib import Path
import pstats
import time
import traceback
from typing import Any
import warnings

import numpy as np
import optuna

from benchmarks._cellspace_problem import CellSpaceProblem
from benchmarks._nb201_samplers import OURS, SAMPLERS, Problem, sampler_source_hash
from benchmarks._nb201_table import NB201Problem

_PROBLEMS: dict[tuple[str, ...], Problem] = {}
KINDS = ("nb201", "cellspace")


@dataclass(frozen=True)
class RunSpec:
    """What one run does. ``budgets`` are the trial counts its gap is read at.

    For ``kind="cellspace"`` the ``dataset`` is the table's and ``device`` its latency column.
    """

    table: str
    dataset: str
    device: str
    sampler: str
    seed: int
    n_trials: int
    budgets: tuple[int, ...]
    objectives: tuple[str, ...] = ("error", "latency")
    kind: str = "nb201"
    threads: int = 1
    profile: bool = False

    def key(self) -> tuple[str, str, str, str, str, int]:
        return (
            self.kind,
            self.dataset,
            self.device,
            task_of(self.objectives),
            self.sampler,
            self.seed,
        )


def task_of(objectives: Sequence[str]) -> str:
    """The objectives as one label, e.g. ``"error+latency"``."""
    return "+".join(objectives)


def problem_for(
    table: str,
    dataset: str,
    device: str,
    objectives: Sequence[str] = ("error", "latency"),
    kind: str = "nb201",
) -> Problem:
    """The problem, loaded once per process (loading and the true front take seconds)."""
    key = (kind, table, dataset, device, *objectives)
    if key not in _PROBLEMS:
        if kind == "nb201":
            _PROBLEMS[key] = NB201Problem.load(
                table, dataset=dataset, device=device, objectives=objectives
            )
        elif kind == "cellspace":
            _PROBLEMS[key] = CellSpaceProblem.load(table, latency=device, objectives=objectives)
        else:
            raise ValueError(f"Got kind={kind!r}, but expected one of {KINDS}.")
    return _PROBLEMS[key]


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of the JSON-lines file ``path``, gzipped where its name ends in ``.gz``."""
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def gaps_at(problem: Problem, values: list[list[float]], budgets: tuple[int, ...]) -> dict:
    """Hypervolume gap of the first ``b`` trials for each budget ``b`` the run reached."""
    return {
        str(b): problem.hypervolume_gap(np.asarray(values[:b])) if b <= len(values) else None
        for b in budgets
    }


def run(spec: RunSpec) -> dict[str, Any]:
    """Run ``spec`` and return its record (values, per-trial times, gaps, errors, warnings)."""
    import torch

    torch.set_num_threads(spec.threads)
    # Hash the sampler's source before it is imported, so the record names the code that ran.
    source = sampler_source_hash() if spec.sampler in OURS else None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    problem = problem_for(spec.table, spec.dataset, spec.device, spec.objectives, spec.kind)
    sampler = SAMPLERS[spec.sampler](problem, spec.seed)
    study = optuna.create_study(directions=["minimize"] * len(problem.objectives), sampler=sampler)
    values: list[list[float]] = []
    archs: list[str] = []
    wall: list[float] = []
    cpu: list[float] = []
    error = None
    profiler = cProfile.Profile() if spec.profile else None
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if profiler is not None:
            profiler.enable()
        try:
            for _ in range(spec.n_trials):
                t0, c0 = time.perf_counter(), time.process_time()
                trial = study.ask()
                arch = problem.suggest(trial)
                point = problem.values[arch]
                study.tell(trial, list(point))
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                values.append(list(point))
                archs.append(arch)
                if len(values) % 50 == 0 or wall[-1] > 10:  # a sign of life from long runs
                    print(
                        f"  {spec.sampler} seed {spec.seed} {spec.dataset}:{spec.device}: trial "
                        f"{len(values)}, {wall[-1]:.2f} s wall, {cpu[-1]:.2f} s CPU",
                        flush=True,
                    )
        except Exception:  # a sampler failure is a result to report, not a crash of the pool
            error = traceback.format_exc(limit=8)
        if profiler is not None:
            profiler.disable()
    messages = sorted({f"{w.category.__name__}: {w.message}"[:300] for w in caught})
    record: dict[str, Any] = asdict(spec)
    record.update(
        title=problem.title,
        latency_column=problem.latency_column,
        completed=len(values),
        values=values,
        duplicates=len(archs) - len(set(archs)),
        front_found=len(set(archs) & set(problem.front)),
        wall=wall,
        cpu=cpu,
        total_s=time.perf_counter() - started,
        gaps=gaps_at(problem, values, spec.budgets),
        error=error,
        warnings=messages[:10],
        sampler_source=source,
    )
    if profiler is not None:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(30)
        record["profile"] = stream.getvalue()
    return record


def time_at(record: dict[str, Any], n: int, window: int = 5, key: str = "wall") -> float | None:
    """Median time of the ``window`` trials ending with the ``n``-th (``None`` if not reached)."""
    times = record[key]
    if len(times) < n:
        return None
    return float(np.median(times[max(0, n - window) : n]))
