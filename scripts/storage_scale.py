"""Many DPPSampler workers on one study: PostgreSQL directly vs Optuna's gRPC storage proxy.

Each worker process searches NAS-Bench-201's table (a look-up, so the storage and the sampler's
planning are all that cost) with ``DPPSampler`` and its latency as a cheap objective, and counts
its storage round trips: SQL statements sent to PostgreSQL, or gRPC calls sent to the proxy.
For each mode the script prints completed trials per minute (first start to last finish),
round trips per trial, the median and 90th percentile of a trial's duration (almost all of it
the sampler's planning while the other workers plan too), and duplicate architectures:

    python scripts/storage_scale.py --workers 16 --trials 4 [--modes direct,proxy]

Needs PostgreSQL (``--url``), ``optuna-devnas[postgresql,grpc,benchmarks]`` and the table
``../shared/data/nb201/nb201_joined.csv.gz`` (see ``benchmarks/_nb201_table.py``).
"""

from __future__ import annotations

import argparse
from collections import Counter
import json
import os
from pathlib import Path
import socket
import statistics
import subprocess
import sys
import time
import uuid

import optuna
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]

SERVER = """
import sys
from optuna.storages import get_storage, run_grpc_proxy_server
run_grpc_proxy_server(get_storage(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]))
"""

WORKER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import optuna
from benchmarks._nb201_table import NB201Problem
from optuna_devnas.samplers import DPPSampler

mode, target, name, n_trials = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
optuna.logging.set_verbosity(optuna.logging.WARNING)
calls = {"n": 0}
if mode == "proxy":
    from optuna.storages import GrpcStorageProxy
    storage = GrpcStorageProxy(host="127.0.0.1", port=int(target))
    storage.wait_server_ready(timeout=60)
    stub = storage._stub
    for rpc in [n for n in vars(stub) if not n.startswith("_")]:
        def counted(*args, _call=getattr(stub, rpc), **kwargs):
            calls["n"] += 1
            return _call(*args, **kwargs)
        setattr(stub, rpc, counted)
else:
    import sqlalchemy
    storage = optuna.storages.get_storage(target)
    def count(*args):
        calls["n"] += 1
    sqlalchemy.event.listen(storage._backend.engine, "before_cursor_execute", count)
problem = NB201Problem.load()
sampler = DPPSampler(cheap_objectives=problem.cheap)
study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
study.optimize(problem, n_trials=n_trials)
print(json.dumps({"round_trips": calls["n"]}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(mode: str, url: str, n_workers: int, n_trials: int) -> dict[str, float]:
    """One search with ``n_workers`` processes through ``mode``; its figures."""
    name = f"scale-{mode}-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=url, directions=["minimize", "minimize"])
    server = None
    target = url
    if mode == "proxy":
        target = str(_free_port())
        server = subprocess.Popen([sys.executable, "-c", SERVER, url, target])
    try:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        args = [str(ROOT), mode, target, name, str(n_trials)]
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(n_workers)
        ]
        outputs = [worker.communicate(timeout=3600) for worker in workers]
        failed = [err.decode() for (_, err), w in zip(outputs, workers) if w.returncode != 0]
        if failed:
            raise RuntimeError(failed[0])
        round_trips = sum(
            json.loads(out.decode().splitlines()[-1])["round_trips"] for out, _ in outputs
        )
        study = optuna.load_study(study_name=name, storage=url)
        return figures(study, round_trips)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        optuna.delete_study(study_name=name, storage=url)


def figures(study: optuna.Study, round_trips: int) -> dict[str, float]:
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    minutes = (max(ends) - min(starts)).total_seconds() / 60
    durations = sorted(t.duration.total_seconds() for t in trials if t.duration)
    keys = Counter(tuple(sorted(t.params.items())) for t in trials)
    return {
        "trials": len(trials),
        "trials_per_minute": len(trials) / minutes,
        "round_trips_per_trial": round_trips / len(trials),
        "median_trial_s": statistics.median(durations),
        "p90_trial_s": durations[int(0.9 * (len(durations) - 1))],
        "duplicates": sum(n - 1 for n in keys.values()),
    }


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--trials", type=int, default=4, help="trials per worker")
    parser.add_argument("--modes", default="direct,proxy")
    args = parser.parse_args(argv)

    print(
        "| storage | workers | trials | trials/min | round trips/trial | trial median (s) "
        "| trial p90 (s) | duplicates |"
    )
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for mode in args.modes.split(","):
        started = time.monotonic()
        result = run(mode, args.url, args.workers, args.trials)
        result["wall_s"] = time.monotonic() - started
        results.append({"mode": mode, **result})
        label = "PostgreSQL" if mode == "direct" else "gRPC proxy + PostgreSQL"
        print(
            f"| {label} | {args.workers} | {result['trials']} | "
            f"{result['trials_per_minute']:.1f} | {result['round_trips_per_trial']:.1f} | "
            f"{result['median_trial_s']:.2f} | {result['p90_trial_s']:.2f} | "
            f"{result['duplicates']} |",
            flush=True,
        )
    return results


if __name__ == "__main__":
    main()
