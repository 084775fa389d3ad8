"""The main job of ``make demo``: a real device-aware architecture search on digits.

Searches DPP-Net's cell space with ``DPPSampler`` for networks that are accurate, fast on this
CPU and small: three objectives (validation error, measured CPU latency at batch 1, parameter
count), 30 trained networks, a few minutes on two cores. Latency and size are cheap objectives:
the sampler computes them exactly for every candidate child before choosing what to train.

It is ``devnas search`` with the demo's settings, so the study is kept in ``demo.db`` (said at
the start and the end): ``devnas pareto`` and ``devnas export`` work on it right after, and
running the demo again continues it. It prints a line per trial (with its stage), a line for
each planning that takes a while, and the Pareto front at the end.

    python examples/demo.py [--trials 30] [--epochs 3] [--storage sqlite:///demo.db]

The same search from the command line::

    devnas search --study demo --storage sqlite:///demo.db --trials 30 --epochs 3 --k 8 \\
        --objectives val_error,latency_ms,params
"""

from __future__ import annotations

import argparse
import sys

from optuna_devnas.cli import main as devnas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-layers", type=int, default=4)
    parser.add_argument("--k", type=int, default=8, help="networks trained per stage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--study", default="demo")
    parser.add_argument("--storage", default="sqlite:///demo.db", help="Optuna storage URL")
    args = parser.parse_args(argv)
    return devnas(
        [
            "search",
            "--study",
            args.study,
            "--storage",
            args.storage,
            "--trials",
            str(args.trials),
            "--epochs",
            str(args.epochs),
            "--max-layers",
            str(args.max_layers),
            "--k",
            str(args.k),
            "--seed",
            str(args.seed),
            "--objectives",
            "val_error,latency_ms,params",
            "--sampler",
            "dpp",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
