"""``devnas worker``: join an existing study on a shared storage and run its trials."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from optuna_devnas._errors import DevnasError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="join an existing study (e.g. on PostgreSQL) as one more worker",
        description="Join a study created by 'devnas search' and run trials until the study "
        "has its trial count (or --trials), all workers together.",
    )
    parser.add_argument("--storage", required=True, help="Optuna storage URL")
    parser.add_argument("--study", required=True, help="study name")
    parser.add_argument(
        "--trials", type=int, help="override the study's trial count (default: the study's)"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress lines and no library warnings"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optuna_devnas.commands._job import SearchJob
    from optuna_devnas.commands._storage import describe_storage, load_study

    if args.trials is not None and args.trials < 1:
        raise ValueError(f"Got --trials {args.trials}, but expected a positive integer.")
    study, config = load_study(args.storage, args.study)
    # The configuration stored in the study, with this worker's view of the storage URL.
    config.storage = args.storage
    if config.trains and config.artifacts and not Path(config.artifacts).is_dir():
        raise DevnasError(
            f"The artifact folder {config.artifacts!r} of study {args.study!r} does not exist "
            "here; mount the folder the other workers share at that path (docs/distributed.md)."
        )
    job = SearchJob(config)
    job.attach(study)
    n_trials = args.trials or config.trials
    if not args.quiet:
        weights = f", weights in {config.artifacts}" if config.trains else ""
        print(
            f"devnas worker: joined study {args.study!r} in {describe_storage(args.storage)} "
            f"({n_trials} trials{weights})",
            flush=True,
        )
    job.optimize(study, n_trials=n_trials, show_progress=not args.quiet)
    return 0
