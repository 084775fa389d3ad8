"""``devnas worker``: join an existing study on a shared storage and run its trials."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="join an existing study (e.g. on PostgreSQL) as one more worker",
        description="Join a study created by 'devnas search' and run trials until the study "
        "has its trial count (or --trials).",
    )
    parser.add_argument("--storage", required=True, help="Optuna storage URL")
    parser.add_argument("--study", required=True, help="study name")
    parser.add_argument("--trials", type=int, help="override the study's trial count")
    parser.add_argument("--quiet", action="store_true", help="no per-trial progress lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optuna_devnas.commands._job import SearchJob, load_study

    study, config = load_study(args.storage, args.study)
    if args.trials is not None and args.trials < 1:
        raise ValueError(f"Got --trials {args.trials}, but expected a positive integer.")
    # The configuration stored in the study, with this worker's view of the storage URL.
    config.storage = args.storage
    job = SearchJob(config)
    job.attach(study)
    n_trials = args.trials or config.trials
    print(f"devnas worker: joined {args.study!r} ({n_trials} trials)", flush=True)
    job.optimize(study, n_trials=n_trials, show_progress=not args.quiet)
    return 0
