"""LatencyTable against what the ``Latency`` objective reports, and two measurements against
each other, on random networks of the default ``CellSpace``, on this machine.

For each input size and thread count asked for, the script profiles a ``LatencyTable`` (as
``devnas profile`` does, timed), draws distinct random networks that were not among the table's
calibration networks, and measures every one of them twice with ``Latency`` at its default
settings, in two interleaved rounds (each round in its own random order, the second right after
the first), so the table and both measurements see the same load. Reported per configuration:

- the table's prediction against the first measurement: the fraction within +-10% and +-20%,
  the median absolute error, the median of prediction / measurement, Spearman's rank
  correlation;
- the same for the table's one-scale prediction (``overhead + scale x layer_sum``, what a
  version 1 table predicted), to show what the factor per kind of layer changes;
- the second measurement against the first: how often two measurements agree (the noise
  floor no predictor can beat on this machine under its current load).

With ``--backends torch,onnxruntime`` each configuration runs in both runtimes (a table
profiled in the runtime, ``Latency(backend=...)`` measurements in it), and a last table says
how well a table profiled in one runtime ranks the networks measured in the other (Spearman;
the same networks, as the calibration networks depend on the seed only).

The markdown goes to ``--output`` (the whole file, written by this script).

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.latency_table --networks 100 \\
        --output docs/benchmarks-latency.md
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import os
from pathlib import Path
import random
import sys
import time

import numpy as np
from scipy import stats
import torch

from optuna_devnas.objectives import Latency, LatencyTable, describe_device
from optuna_devnas.spaces import Architecture, CellSpace


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="8,32", help="input heights/widths (default 8,32)")
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument(
        "--calibration", type=int, default=48, help="calibration networks of each table"
    )
    parser.add_argument(
        "--backends", default="torch", help="torch and/or onnxruntime, comma-separated"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="markdown file to write")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.threads = [int(t) for t in args.threads.split(",")]
    args.backends = args.backends.split(",")
    return args


def sample_networks(
    space: CellSpace, count: int, exclude: set[Architecture], seed: int
) -> list[Architecture]:
    """``count`` distinct networks (canonical architectures) of ``space`` not in ``exclude``."""
    pool = sorted(
        {a.canonical() for n in range(1, space.max_layers + 1) for a in space.enumerate(n)}
        - {a.canonical() for a in exclude},
        key=str,
    )
    if count > len(pool):
        raise ValueError(f"Got --networks {count}, but the space has {len(pool)} to test.")
    return random.Random(seed).sample(pool, count)


def agreement(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    p, m = np.asarray(predicted), np.asarray(measured)
    error = np.abs(p / m - 1)
    return {
        "within 10%": float(np.mean(error <= 0.10)),
        "within 20%": float(np.mean(error <= 0.20)),
        "median error": float(np.median(error)),
        "median ratio": float(np.median(p / m)),
        "spearman": float(stats.spearmanr(p, m)[0]),
    }


def run_configuration(size: int, threads: int, backend: str, args: argparse.Namespace) -> dict:
    space = CellSpace()
    shape = (1, 1, size, size)
    started = time.perf_counter()
    table = LatencyTable.profile(
        space, input_shape=shape, threads=threads, backend=backend, calibration=args.calibration
    )
    profile_s = time.perf_counter() - started
    calibration = {space.architecture(row["layers"]) for row in table.calibration}
    networks = sample_networks(space, args.networks, calibration, args.seed)
    latency = Latency(input_shape=shape, threads=threads, backend=backend)
    rounds = []
    for index in range(2):
        order = list(networks)
        random.Random(args.seed + 1 + index).shuffle(order)
        seconds = {}
        for arch in order:
            torch.manual_seed(0)
            seconds[arch] = latency(arch)
        rounds.append([seconds[arch] for arch in networks])
    predicted = [table.predict(arch) for arch in networks]
    one_scale = [table.overhead + table.scale * table.layer_sum(arch) for arch in networks]
    return {
        "size": size,
        "threads": threads,
        "backend": backend,
        "networks": [str(arch) for arch in networks],
        "predicted": predicted,
        "measured": rounds[0],
        "profile_s": profile_s,
        "load": os.getloadavg()[0],
        "table": agreement(predicted, rounds[0]),
        "one_scale": agreement(one_scale, rounds[0]),
        "noise": agreement(rounds[1], rounds[0]),
        "kind_scales": table.kind_scales,
        "overhead_scale": table.overhead_scale,
    }


def markdown(results: list[dict], args: argparse.Namespace, argv: Sequence[str]) -> str:
    cpu = describe_device(torch.device("cpu"), threads=1)["cpu_model"]
    lines = [
        "# Latency tables against the Latency objective",
        "",
        "Written by `benchmarks/latency_table.py` (its docstring says what is measured):",
        "",
        f"    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.latency_table {' '.join(argv)}",
        "",
        f"{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}; {args.networks} random "
        "networks of the default `CellSpace` per configuration, each measured twice by "
        "`Latency()` at its defaults (5 repeats of at least 0.05 s, the median), in two "
        "interleaved rounds. `load` is the 1-minute load average at the end.",
        "",
        "| input | threads | runtime | predictor | within 10% | within 20% | median error | "
        "median ratio | Spearman | profile s | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    names = {
        "table": "LatencyTable (factor per kind)",
        "one_scale": "LatencyTable, one scale",
        "noise": "a second measurement",
    }
    for r in results:
        for key, name in names.items():
            a = r[key]
            lines.append(
                f"| {r['size']}x{r['size']} | {r['threads']} | {r['backend']} | {name} | "
                f"{100 * a['within 10%']:.0f}% | {100 * a['within 20%']:.0f}% | "
                f"{100 * a['median error']:.1f}% | {a['median ratio']:.3f} | "
                f"{a['spearman']:.3f} | {r['profile_s']:.0f} | {r['load']:.1f} |"
            )
    lines += ["", "Fitted factors (per kind of layer, and the overhead's):", ""]
    for r in results:
        factors = ", ".join(f"{k} {v:.2f}" for k, v in r["kind_scales"].items())
        lines.append(
            f"- {r['size']}x{r['size']}, {r['threads']} thread(s), {r['backend']}: {factors}; "
            "overhead "
            f"{r['overhead_scale']:.2f}"
        )
    lines += cross_runtime(results)
    return "\n".join(lines) + "\n"


def cross_runtime(results: list[dict]) -> list[str]:
    """Rows: a table profiled in one runtime against measurements in another, same networks."""
    rows = []
    for a in results:
        for b in results:
            same = (a["size"], a["threads"]) == (b["size"], b["threads"])
            if not same or a["backend"] == b["backend"] or a["networks"] != b["networks"]:
                continue
            rho = float(stats.spearmanr(a["predicted"], b["measured"])[0])
            own = float(stats.spearmanr(b["predicted"], b["measured"])[0])
            rows.append(
                f"| {a['size']}x{a['size']} | {a['threads']} | {a['backend']} | {b['backend']} "
                f"| {rho:.3f} | {own:.3f} |"
            )
    if not rows:
        return []
    return [
        "",
        "A table profiled in one runtime ranking networks measured in another (Spearman), "
        "beside the measuring runtime's own table:",
        "",
        "| input | threads | table's runtime | measured in | Spearman | own table's Spearman |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    results = []
    for size in args.sizes:
        for threads in args.threads:
            for backend in args.backends:
                result = run_configuration(size, threads, backend, args)
                results.append(result)
                report(result)
    text = markdown(results, args, argv)
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


def report(result: dict) -> None:
    size, threads, t = result["size"], result["threads"], result["table"]
    print(
        f"{size}x{size}, {threads} thread(s), {result['backend']}: table within 10% "
        f"{t['within 10%']:.2f}, Spearman {t['spearman']:.3f}; two measurements within 10% "
        f"{result['noise']['within 10%']:.2f}; profiled in {result['profile_s']:.0f} s",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
