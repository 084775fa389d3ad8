"""One benchmark run: one sampler, one seed, one NAS-Bench-201 problem, timed trial by trial.

A run is a plain function of a plain :class:`RunSpec` returning a JSON-serializable dict, so it
can go to a process pool and be appended to a results file. The run drives the study with
``ask``/``tell`` so each trial's sampler time can be taken apart from the objective: a trial's
time is the wall-clock (and process CPU) time of ``study.ask()``, the six ``suggest_categorical``
calls (where relative and independent sampling happen) and ``study.tell()`` (where samplers'
``after_trial`` runs). The table look-up inside is a dictionary access (microseconds).
"""

from __future__ import annotations

import cProfile
from dataclasses import asdict, dataclass
import io
import pstats
import time
import traceback
from typing import Any
import warnings

import numpy as np
import optuna

from benchmarks._nb201_samplers import OURS, SAMPLERS, sampler_source_hash
from benchmarks._nb201_table import NB201Problem

_PROBLEMS: dict[tuple[str, str, str], NB201Problem] = {}


@dataclass(frozen=True)
class RunSpec:
    """What one run does. ``budgets`` are the trial counts its gap is read at."""

    table: str
    dataset: str
    device: str
    sampler: str
    seed: int
    n_trials: int
    budgets: tuple[int, ...]
    threads: int = 1
    profile: bool = False

    def key(self) -> tuple[str, str, str, int]:
        return (self.dataset, self.device, self.sampler, self.seed)


def problem_for(table: str, dataset: str, device: str) -> NB201Problem:
    """The problem, loaded once per process (loading and the true front take seconds)."""
    key = (table, dataset, device)
    if key not in _PROBLEMS:
        _PROBLEMS[key] = NB201Problem.load(table, dataset=dataset, device=device)
    return _PROBLEMS[key]


def gaps_at(problem: NB201Problem, values: list[list[float]], budgets: tuple[int, ...]) -> dict:
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
    problem = problem_for(spec.table, spec.dataset, spec.device)
    sampler = SAMPLERS[spec.sampler](problem, spec.seed)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
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
