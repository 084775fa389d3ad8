"""Every architecture of a ``CellSpace`` trained and measured once: a tabular benchmark's table.

The default ``CellSpace`` (``max_layers=4``) holds 456 architectures, few enough to train all of
them on scikit-learn's digits, so that a search over the space becomes a table look-up and its
hypervolume gap to the exact Pareto front can be measured over many seeds in minutes
(``benchmarks/cellspace.py``). For each architecture the table holds:

- ``val_error_mean``, ``val_error_std``, ``val_error_seeds``: validation error of the project's
  own :class:`~optuna_devnas.objectives.ValidationError` (fixed epochs and learning rate) for
  each training seed, on one fixed train/validation split;
- ``params`` and ``flops`` of the deployed (condensed) network
  (:class:`~optuna_devnas.objectives.ParamCount`, :class:`~optuna_devnas.objectives.FLOPs`);
- ``latency_table_ms``: a :class:`~optuna_devnas.objectives.LatencyTable` profiled here;
- ``latency_ms``: the :class:`~optuna_devnas.objectives.Latency` objective at its default
  settings, the median over interleaved rounds so that a burst of load spreads over many
  architectures instead of shifting a few.

Architectures that build the same network (a trailing ``identity``,
:meth:`~optuna_devnas.spaces.Architecture.canonical`) share one training and one measurement;
every architecture still has its row (``network`` names the shared one).

Resumable: every finished training and measurement round is appended to a JSON-lines file in
``--work``, and a second run skips what is there. Usage (from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.cellspace_table --work runs/cellspace \\
        --output benchmarks/data/cellspace_digits.csv.gz

For your own data set, pass ``--data`` (any name :func:`optuna_devnas.data.load_data` takes,
e.g. ``cifar10`` with ``--data-root``) and another ``--output``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
import csv
import gzip
import io
import json
import os
from pathlib import Path
import platform
import random
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

from optuna_devnas.data import load_data
from optuna_devnas.objectives import (
    FLOPs,
    Latency,
    LatencyTable,
    ParamCount,
    ValidationError,
    describe_device,
)
from optuna_devnas.spaces import Architecture, CellSpace

COLUMNS = (
    "architecture",
    "network",
    "n_layers",
    "val_error_mean",
    "val_error_std",
    "val_error_seeds",
    "params",
    "flops",
    "latency_table_ms",
    "latency_ms",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, help="folder of the resumable JSON-lines logs")
    parser.add_argument("--output", required=True, help="the table, .csv or .csv.gz")
    parser.add_argument("--data", default="digits", help="data set name (default digits)")
    parser.add_argument("--data-root", default=None, help="folder of a CIFAR data set")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the validation split")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds (default 0,1,2)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    parser.add_argument("--max-layers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5, help="latency rounds (default 5)")
    parser.add_argument(
        "--readme", help="where to say how the table was made (default: README.md beside it)"
    )
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    if not args.seeds:
        parser.error("--seeds needs at least one seed")
    return args


def all_architectures(space: CellSpace) -> list[Architecture]:
    return [a for n in range(1, space.max_layers + 1) for a in space.enumerate(n)]


def networks(space: CellSpace) -> list[Architecture]:
    """The distinct networks of ``space`` (canonical architectures), in enumeration order."""
    return list(dict.fromkeys(a.canonical() for a in all_architectures(space)))


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


class Progress:
    """One line per step with the time spent and an estimate of the time left."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.started = time.perf_counter()

    def step(self, what: str) -> None:
        self.done += 1
        spent = time.perf_counter() - self.started
        left = spent / self.done * (self.total - self.done)
        print(
            f"{self.label} [{self.done}/{self.total}] {spent:6.0f} s spent, ~{left:5.0f} s "
            f"left: {what}",
            flush=True,
        )


def train_all(
    args: argparse.Namespace, space: CellSpace, work: Path
) -> dict[tuple[str, int], float]:
    log = work / "training.jsonl"
    done = {(r["network"], r["seed"]): r["error"] for r in _read(log)}
    todo = [(a, s) for a in networks(space) for s in args.seeds if (str(a), s) not in done]
    if not todo:
        return done
    data = load_data(args.data, seed=args.split_seed, root=args.data_root)
    progress = Progress("training", len(todo))
    trainers = {
        s: ValidationError(data=data, epochs=args.epochs, lr=args.lr, seed=s) for s in args.seeds
    }
    for arch, seed in todo:
        started = time.perf_counter()
        error = trainers[seed](arch)
        seconds = time.perf_counter() - started
        _append(log, {"network": str(arch), "seed": seed, "error": error, "seconds": seconds})
        done[(str(arch), seed)] = error
        progress.step(f"{arch} seed {seed}: error {error:.4f} in {seconds:.1f} s")
    return done


def profile_table(
    args: argparse.Namespace, space: CellSpace, input_shape: tuple[int, ...], work: Path
) -> LatencyTable:
    path = work / "latency_table.json"
    if path.is_file():
        return LatencyTable.load(path, space=space, input_shape=input_shape)
    started = time.perf_counter()
    table = LatencyTable.profile(space, input_shape=input_shape, threads=1)
    table.save(path)
    print(f"latency table profiled in {time.perf_counter() - started:.0f} s", flush=True)
    return table


def measure_all(
    args: argparse.Namespace, space: CellSpace, input_shape: tuple[int, ...], work: Path
) -> dict[str, float]:
    """Median over ``--rounds`` interleaved rounds of the ``Latency`` objective, in seconds."""
    log = work / "latency.jsonl"
    rounds = _read(log)
    nets = networks(space)
    latency = Latency(input_shape=input_shape, threads=1)
    progress = Progress("latency", max(0, args.rounds - len(rounds)) * len(nets))
    for index in range(len(rounds), args.rounds):
        order = list(nets)
        random.Random(index).shuffle(order)
        seconds = {}
        for arch in order:
            torch.manual_seed(0)
            seconds[str(arch)] = latency(arch)
            progress.step(f"round {index + 1}: {arch} {1e3 * seconds[str(arch)]:.3f} ms")
        record = {"round": index, "seconds": seconds, "load": os.getloadavg()}
        _append(log, record)
        rounds.append(record)
    return {
        str(a): statistics.median(r["seconds"][str(a)] for r in rounds[: args.rounds])
        for a in nets
    }


def rows(
    args: argparse.Namespace,
    space: CellSpace,
    input_shape: tuple[int, ...],
    errors: dict[tuple[str, int], float],
    table: LatencyTable,
    latency: dict[str, float],
) -> Iterable[dict[str, Any]]:
    params = ParamCount(input_shape=input_shape)
    flops = FLOPs(input_shape=input_shape)
    counted: dict[str, tuple[float, float]] = {}
    for arch in all_architectures(space):
        network = arch.canonical()
        name = str(network)
        if name not in counted:
            torch.manual_seed(0)
            counted[name] = (params(network), flops(network))
        values = [errors[(name, s)] for s in args.seeds]
        yield {
            "architecture": str(arch),
            "network": name,
            "n_layers": arch.n_layers,
            "val_error_mean": round(statistics.fmean(values), 6),
            "val_error_std": round(statistics.pstdev(values), 6),
            "val_error_seeds": ";".join(f"{v:.6f}" for v in values),
            "params": int(counted[name][0]),
            "flops": int(counted[name][1]),
            "latency_table_ms": round(1e3 * table.predict(network), 6),
            "latency_ms": round(1e3 * latency[name], 6),
        }


def write_table(path: Path, records: Iterable[dict[str, Any]]) -> int:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for record in records:
        writer.writerow(record)
        count += 1
    data = buffer.getvalue().encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".gz":
        tmp.write_bytes(gzip.compress(data, mtime=0))  # no timestamp: same table, same bytes
    else:
        tmp.write_bytes(data)
    tmp.replace(path)
    return count


def describe(args: argparse.Namespace, work: Path, argv: list[str]) -> str:
    """How the table was made: command, commit, machine, load (for the README beside it)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = "unknown"
    trained = _read(work / "training.jsonl")
    rounds = _read(work / "latency.jsonl")
    cpu = describe_device(torch.device("cpu"), threads=1)["cpu_model"]
    loads = [r["load"][0] for r in rounds]
    seconds = sum(r["seconds"] for r in trained)
    return "\n".join(
        [
            f"- command: `python -m benchmarks.cellspace_table {' '.join(argv)}`",
            f"- commit: {commit}; torch {torch.__version__}, Python {platform.python_version()}",
            f"- machine: {cpu}, {os.cpu_count()} CPUs; one torch thread for training and timing",
            f"- training: {len(trained)} runs ({args.epochs} epochs, lr {args.lr}, seeds "
            f"{args.seeds}, split seed {args.split_seed}), {seconds / 60:.0f} min of training",
            f"- latency: {len(rounds)} interleaved rounds of `Latency()` defaults; 1-minute load "
            f"average at the end of each round: "
            + (", ".join(f"{v:.2f}" for v in loads) if loads else "-"),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    space = CellSpace(max_layers=args.max_layers)
    data_shape = load_data(args.data, seed=args.split_seed, root=args.data_root).input_shape
    input_shape = (1, *data_shape)
    print(
        f"{space.size()} architectures, {len(networks(space))} distinct networks, "
        f"seeds {args.seeds}: {len(networks(space)) * len(args.seeds)} trainings",
        flush=True,
    )
    errors = train_all(args, space, work)
    table = profile_table(args, space, input_shape, work)
    latency = measure_all(args, space, input_shape, work)
    output = Path(args.output)
    count = write_table(output, rows(args, space, input_shape, errors, table, latency))
    about = describe(args, work, argv)
    (work / "about.md").write_text(about + "\n")
    readme = Path(args.readme) if args.readme else output.parent / "README.md"
    readme.write_text(README.format(name=output.name, rows=count, about=about))
    print(f"wrote {count} rows to {output} and {readme}\n{about}", flush=True)
    return 0


README = """# {name}

{rows} rows, one per architecture of the default `CellSpace` (`max_layers=4`), written by
`benchmarks/cellspace_table.py` (see its docstring; `benchmarks/cellspace.py` reads it).

Columns: `architecture` (`str(Architecture)`), `network` (the canonical architecture whose
training and measurement the row shares: a trailing `identity` builds the same network),
`n_layers`, `val_error_mean`, `val_error_std` and `val_error_seeds` (`ValidationError` on
digits, one fixed validation split, one value per training seed), `params` and `flops` of the
deployed network, `latency_table_ms` (a `LatencyTable` profiled on the same machine) and
`latency_ms` (the `Latency` objective at its defaults, one thread, batch 1, the median over
interleaved rounds).

How it was made:

{about}

To build the same table for your own data set, run the builder with `--data` (any name
`optuna_devnas.data.load_data` takes; CIFAR needs `--data-root`) and another `--output`.
"""


if __name__ == "__main__":
    raise SystemExit(main())
