"""DPPSampler's progressive CellSpace search against Optuna's samplers, over an exhaustive table.

Every run searches the default ``CellSpace`` (``max_layers=4``, 456 architectures) through
``CellSpace.suggest``, so ``DPPSampler`` runs DPP-Net's stages (1 layer, then 2, ...), and
reads each trial's objectives from ``benchmarks/data/cellspace_digits.csv.gz``, where every
architecture was trained on digits and measured once (``benchmarks/cellspace_table.py``). The
hypervolume gap is the one of ``../shared/DESIGN.md`` section 9 (objectives min-max
normalized over the whole table, reference point 1.1), read along each run at every budget.
Tasks (``--objectives``): validation error vs latency, and validation error vs latency vs
parameters; DPPSampler gets every objective but the error as a cheap objective.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.cellspace --seeds 20 \\
        --objectives error,latency --objectives error,latency,params \\
        --results runs/cellspace/runs.jsonl --resume --output runs/cellspace/report.md

Everything else (``--results``, ``--resume``, ``--jobs``, the tables) works as in
``benchmarks/nb201.py``.
"""

from __future__ import annotations

import argparse

from benchmarks import nb201
from benchmarks._cellspace_problem import DEFAULT_TABLE, LATENCY_COLUMNS, dataset_of


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = nb201.common_parser(
        __doc__.split("\n\n")[0],
        table=str(DEFAULT_TABLE),
        budgets=(20, 30, 60, 120),
        samplers="dpp-cheap,dpp-pareto,random,tpe,nsga2,gp",
        timing_samplers="",
    )
    parser.add_argument(
        "--latency",
        action="append",
        choices=LATENCY_COLUMNS,
        help="latency column: measured (latency_ms, default) or table-predicted; repeatable",
    )
    args = parser.parse_args(argv)
    nb201.check_common(parser, args)
    dataset = dataset_of(args.table)
    args.problems = [(dataset, latency) for latency in (args.latency or ["latency_ms"])]
    args.kind = "cellspace"
    return args


def main(argv: list[str] | None = None) -> int:
    return nb201.execute(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
