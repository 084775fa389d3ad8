"""``devnas retarget``: a search made for one device, re-used for another without retraining.

Copies a study made by ``devnas search`` into a new study whose ``latency_ms`` comes from a
latency table profiled on the new device (``devnas profile``): every trained network keeps its
accuracy, and its latency is read from the table (``optuna_devnas.retarget``). The new device's
Pareto front is printed at once; with ``--trials N`` the search then trains ``N`` more networks
for that device. Every input is checked before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import optuna

from optuna_devnas._errors import DevnasError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "retarget",
        help="copy a search to another device's latency table, without retraining",
        description="Copy a study made by 'devnas search' into a new study whose latency_ms "
        "comes from a latency table of another device (made by 'devnas profile'); print the new "
        "device's Pareto front at once, and with --trials train that many more networks for it.",
    )
    parser.add_argument("--storage", required=True, help="Optuna storage URL of both studies")
    parser.add_argument("--study", required=True, help="the finished study to copy")
    parser.add_argument("--to", required=True, help="name of the new device's study")
    parser.add_argument(
        "--table", required=True, help="latency table of the new device (devnas profile)"
    )
    parser.add_argument(
        "--trials", type=int, default=0, help="networks to train for the new device (default 0)"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress lines and no library warnings"
    )
    parser.set_defaults(func=run)


def target_config(config: Any, args: argparse.Namespace, copied: int) -> Any:
    """The source's configuration for the new study: its name, the table, its budget."""
    return dataclasses.replace(
        config,
        study=args.to,
        storage=args.storage,
        latency_table=str(Path(args.table).expanduser().resolve()),
        trials=max(copied + args.trials, 1),
    )


def _check(args: argparse.Namespace, config: Any) -> None:
    if args.trials < 0:
        raise ValueError(f"Got --trials {args.trials}, but expected 0 or more.")
    if args.to == args.study:
        raise ValueError(f"Got --to {args.to!r}, but expected another name than --study.")
    if config.objective is not None or "latency_ms" not in config.objectives:
        raise DevnasError(
            f"Study {args.study!r} has no latency_ms objective to retarget (its objectives: "
            f"{config.objectives or config.objective})."
        )
    if not Path(args.table).is_file():
        raise DevnasError(f"Got --table {args.table!r}, but no such file exists.")


def run(args: argparse.Namespace) -> int:
    from optuna_devnas._retarget import retarget
    from optuna_devnas.commands._config import CONFIG_ATTR
    from optuna_devnas.commands._job import SearchJob, directions
    from optuna_devnas.commands._storage import describe_storage, load_study, open_storage
    from optuna_devnas.commands.pareto import print_front

    source, config = load_study(args.storage, args.study)
    _check(args, config)
    finished = len(
        source.get_trials(
            deepcopy=False,
            states=(
                optuna.trial.TrialState.COMPLETE,
                optuna.trial.TrialState.PRUNED,
                optuna.trial.TrialState.FAIL,
            ),
        )
    )
    new_config = target_config(config, args, finished)
    # Building the job reads the table against the space and input shape: a table of another
    # space or input shape is refused here, before anything is written.
    job = SearchJob(new_config)
    storage = open_storage(args.storage, new_config)
    names = {s.study_name: s for s in optuna.get_all_study_summaries(storage)}
    wanted = directions(new_config)
    if args.to in names:
        existing = [d.name.lower() for d in names[args.to].directions]
        if existing != wanted:
            raise DevnasError(
                f"Study {args.to!r} exists with directions {existing}, but {args.study!r} has "
                f"{wanted}; use another --to name."
            )
    target = job.create_study()
    assert job.cheap is not None
    latency = job.cheap.function("latency_ms")
    index = list(new_config.objectives).index("latency_ms")
    copied = retarget(source, target, objectives={index: latency})
    target.set_user_attr(CONFIG_ATTR, job.config.to_dict())
    where = describe_storage(args.storage)
    print(
        f"devnas retarget: {copied} trial(s) of {args.study!r} copied into {args.to!r} in "
        f"{where}, latency from {new_config.latency_table} (no training)."
    )
    print_front(target)
    if args.trials:
        job.optimize(target, n_trials=new_config.trials, show_progress=not args.quiet)
        print_front(target)
    return 0
