"""LatencyTable against measured latency on random CellSpace architectures, on this machine.

Profiles a latency table for a CellSpace on this CPU, then measures, in interleaved rounds, the
latency of random architectures of the space (distinct, none of them a calibration network of
the table) with the ``Latency`` objective, and compares side by side, on the same
architectures and measurements:

- the table's prediction (overhead + scale x sum of layer entries), profiled before the
  measurements as a user would;
- the same, from a table combined of one-round profiles taken between the measurement rounds
  (it saw the same load as the measurements: the table's own error without load drift);
- the table's raw sum (overhead + sum of layer entries, no calibration),
- a linear fit of latency on FLOPs over the table's calibration networks (a cheap proxy), and
- a second measurement of the same network (the noise floor: how well a measurement predicts
  another one on this machine right now).

Reported: median absolute percentage error, the fraction within +-10% and +-20%, Spearman's rank
correlation; and the repeatability of ``Latency``: the coefficient of variation over 5 repeated
measurements, for the thread-CPU-time clock and the wall clock. With ``--output`` the results go
into a markdown file between ``<!-- results:start -->`` and ``<!-- results:end -->`` (the rest of
the file is kept).

    python benchmarks/latency_table.py --architectures 100 --output docs/benchmarks-latency.md
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import os
from pathlib import Path
import random
import shlex
import statistics
import sys
import time

import numpy as np
from scipy import stats
import torch

from optuna_devnas.objectives import FLOPs, Latency, LatencyTable
from optuna_devnas.spaces import Architecture, CellSpace

START, END = "<!-- results:start -->", "<!-- results:end -->"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input-shape", default="1,8,8", help="C,H,W (default 1,8,8: digits)")
    parser.add_argument("--max-layers", type=int, default=4)
    parser.add_argument("--architectures", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds")
    parser.add_argument("--min-run-time", type=float, default=0.05, help="per measurement")
    parser.add_argument("--table-min-run-time", type=float, default=0.005)
    parser.add_argument("--table-rounds", type=int, default=3)
    parser.add_argument("--calibration", type=int, default=12)
    parser.add_argument("--repeatability", type=int, default=10, help="architectures for CV")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="markdown file to write the results into")
    parser.add_argument("--details", help="CSV file for per-architecture numbers")
    return parser.parse_args(argv)


def sample_architectures(
    space: CellSpace, count: int, exclude: set[Architecture], seed: int
) -> list[Architecture]:
    pool = [
        arch
        for n_layers in range(1, space.max_layers + 1)
        for arch in space.enumerate(n_layers)
        if arch not in exclude
    ]
    if count > len(pool):
        raise ValueError(f"Got --architectures {count}, but the space has {len(pool)} to test.")
    return random.Random(seed).sample(pool, count)


def table_profile(
    space: CellSpace, batch_shape: tuple[int, ...], args: argparse.Namespace, *, rounds: int
) -> LatencyTable:
    return LatencyTable.profile(
        space,
        input_shape=batch_shape,
        min_run_time=args.table_min_run_time,
        rounds=rounds,
        calibration=args.calibration,
        seed=args.seed,
    )


def errors_row(name: str, predicted: Sequence[float], measured: Sequence[float]) -> list[str]:
    p, m = np.asarray(predicted), np.asarray(measured)
    relative = np.abs(p / m - 1.0)
    rho = stats.spearmanr(p, m).statistic
    return [
        name,
        f"{100 * np.median(relative):.1f}%",
        f"{100 * np.mean(relative <= 0.10):.0f}%",
        f"{100 * np.mean(relative <= 0.20):.0f}%",
        f"{rho:.3f}",
    ]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(argv)
    image_shape = tuple(int(s) for s in args.input_shape.split(","))
    batch_shape = (1, *image_shape)
    space = CellSpace(max_layers=args.max_layers)
    load_before = os.getloadavg()
    started = time.perf_counter()

    table = table_profile(space, batch_shape, args, rounds=args.table_rounds)
    profile_seconds = table.settings["profile_seconds"]
    print(f"profiled {len(table.entries)} entries in {profile_seconds:.1f} s", file=sys.stderr)

    calibration = [space.architecture(row["layers"]) for row in table.calibration]
    archs = sample_architectures(space, args.architectures, set(calibration), args.seed + 1)
    latency = Latency(input_shape=batch_shape, min_run_time=args.min_run_time, repeats=1)
    models = {arch: latency.build(arch) for arch in archs}
    rounds: list[dict[Architecture, float]] = []
    between: list[LatencyTable] = []
    rng = random.Random(args.seed + 2)
    for index in range(args.rounds):
        # A one-round profile before each measurement round: combined, a table that saw the
        # same load as the measurements, which separates the table's own error from load drift.
        between.append(table_profile(space, batch_shape, args, rounds=1))
        order = archs[:]
        rng.shuffle(order)  # interleaved and reordered: load drifts spread over all networks
        rounds.append({arch: latency.evaluate(models[arch]) for arch in order})
        print(f"round {index + 1}/{args.rounds} done", file=sys.stderr)
    measured = [statistics.median(r[arch] for r in rounds) for arch in archs]
    matched = LatencyTable.combine(between)

    flops = FLOPs(input_shape=batch_shape)
    calibration_flops = [flops(arch) for arch in calibration]
    calibration_seconds = [row["measured"] for row in table.calibration]
    slope, intercept = np.polyfit(calibration_flops, calibration_seconds, 1)
    flops_fit = [intercept + slope * flops(arch) for arch in archs]

    predicted = [table.predict(arch) for arch in archs]
    rows = [
        errors_row("LatencyTable.predict (calibrated)", predicted, measured),
        errors_row(
            "LatencyTable profiled between the measurement rounds (`combine`)",
            [matched.predict(arch) for arch in archs],
            measured,
        ),
        errors_row(
            "LatencyTable raw sum (scale 1)",
            [table.overhead + table.layer_sum(a) for a in archs],
            measured,
        ),
        errors_row("linear fit on FLOPs (same calibration)", flops_fit, measured),
    ]
    if args.rounds >= 2:
        first = [rounds[0][arch] for arch in archs]
        second = [rounds[1][arch] for arch in archs]
        rows.append(errors_row("noise floor: measurement 1 vs 2", first, second))

    if args.details:
        with open(args.details, "w", encoding="utf-8") as details:
            details.write("cell,n_layers,layer_sum,predicted,flops_fit,measured,rounds\n")
            for i, arch in enumerate(archs):
                values = " ".join(f"{r[arch]:.7f}" for r in rounds)
                details.write(
                    f"{arch},{arch.n_layers},{table.layer_sum(arch):.7f},{predicted[i]:.7f},"
                    f"{flops_fit[i]:.7f},{measured[i]:.7f},{values}\n"
                )

    cv_rows = []
    cv_archs = archs[: args.repeatability]
    for clock in ("thread", "wall") if cv_archs else ():
        repeated = Latency(
            input_shape=batch_shape, min_run_time=args.min_run_time, repeats=5, clock=clock
        )
        cvs = []
        for arch in cv_archs:
            repeated.evaluate(models[arch])
            values = repeated.measurements
            cvs.append(statistics.stdev(values) / statistics.mean(values))
        cv_rows.append(
            [
                f"`Latency(clock={clock!r})`",
                f"{100 * statistics.median(cvs):.1f}%",
                f"{100 * float(np.percentile(cvs, 90)):.1f}%",
                f"{100 * max(cvs):.1f}%",
            ]
        )
    load_after = os.getloadavg()
    elapsed = time.perf_counter() - started

    device = table.device
    command = "python benchmarks/latency_table.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    report = "\n".join(
        [
            f"Command: `{command.strip()}` ({elapsed:.0f} s).",
            "",
            f"Machine: {device['cpu_model']}, {device['cpu_count']} cores, torch "
            f"{device['torch_version']}, {device['threads']} thread, clock "
            f"`{table.settings['clock']}`; load average {load_before[0]:.1f} before and "
            f"{load_after[0]:.1f} after (1-minute, other jobs on the same cores).",
            "",
            f"Table: {space!r} on input {batch_shape}: {len(table.entries)} entries, profiled in "
            f"{profile_seconds:.1f} s; overhead {1e6 * table.overhead:.0f} us, scale "
            f"{table.scale:.2f} (from {len(calibration)} calibration networks); the table "
            f"combined between the rounds: overhead {1e6 * matched.overhead:.0f} us, scale "
            f"{matched.scale:.2f}.",
            "",
            f"Test set: {len(archs)} distinct random architectures of the space (none a "
            f"calibration network), measured latency {1e3 * min(measured):.2f}-"
            f"{1e3 * max(measured):.2f} ms: median of {args.rounds} interleaved `Latency` "
            f"measurements (min_run_time {args.min_run_time} s each).",
            "",
            markdown_table(
                ["predictor", "median abs. % error", "within +-10%", "within +-20%", "Spearman"],
                rows,
            ),
            "",
            f"Repeatability of `Latency` (5 repeats, {len(cv_archs)} architectures): coefficient "
            "of variation of the repeats.",
            "",
            markdown_table(["objective", "median CV", "90th percentile CV", "max CV"], cv_rows),
        ]
    )
    print(report)
    if args.output:
        write_results(Path(args.output), report)
    return report


def write_results(path: Path, report: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else f"{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{report}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
