"""``devnas search``: create (or continue) a study and run a search, showing progress.

The study is kept in its storage (``sqlite:///devnas.db`` in the current folder by default),
said at the start and the end, so ``devnas pareto`` and ``devnas export`` work on it right
after, and running the same command again continues where it stopped.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
import shlex
from typing import Any

from optuna_devnas.commands._config import HELP, SearchConfig


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search",
        help="run an architecture search",
        description="Run a device-aware architecture search, or continue it. Flags override "
        "the --config file; every flag is also a configuration key (docs/cli.md).",
    )
    parser.add_argument("--config", help="JSON (.json) or TOML (.toml) file of the keys below")
    add_config_flags(parser)
    parser.add_argument(
        "--quiet", action="store_true", help="no progress lines and no library warnings"
    )
    parser.set_defaults(func=run)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per SearchConfig field (``--max-layers`` for ``max_layers``), with its default."""
    for item in fields(SearchConfig):
        flag = "--" + item.name.replace("_", "-")
        if item.default is not MISSING:
            default = item.default
        else:
            assert item.default_factory is not MISSING
            default = item.default_factory()
        if isinstance(default, list):
            default = ",".join(str(v) for v in default)
        shown = "none" if default is None else default
        parser.add_argument(
            flag, dest=item.name, metavar="X", help=f"{HELP[item.name]} (default: {shown})"
        )


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    base = SearchConfig.from_file(args.config) if args.config else SearchConfig()
    values = base.to_dict()
    for item in fields(SearchConfig):
        raw = getattr(args, item.name, None)
        if raw is None:
            continue
        values[item.name] = _parse(item.name, raw, str(item.type))
    return SearchConfig.from_dict(values, source="command line")


def _parse(name: str, raw: str, kind: str) -> Any:
    flag = "--" + name.replace("_", "-")
    try:
        if kind.startswith("list[int]"):
            return [int(part) for part in raw.split(",") if part]
        if kind.startswith("list"):
            return [part for part in raw.split(",") if part]
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
    except ValueError:
        raise ValueError(f"Got {flag} {raw!r}, but expected {kind}.") from None
    return raw


def run(args: argparse.Namespace) -> int:
    from optuna_devnas.commands._budget import BudgetState
    from optuna_devnas.commands._job import SearchJob
    from optuna_devnas.commands._storage import describe_storage
    from optuna_devnas.commands.pareto import print_front

    job = SearchJob(config_from_args(args))
    study = job.create_study()
    config = job.config
    where = describe_storage(config.storage)
    if not args.quiet:
        done = BudgetState.of(study.get_trials(deepcopy=False)).ended
        weights = f"; weights in {config.artifacts}" if config.trains else ""
        print(
            f"devnas search: study {config.study!r} in {where} ({done}/{config.trials} trials "
            f"done), sampler {config.sampler}, objectives {', '.join(config.metric_names)}"
            f"{weights}",
            flush=True,
        )
    try:
        job.optimize(study, n_trials=config.trials, show_progress=not args.quiet)
    except KeyboardInterrupt:
        print(
            f"devnas search: the study is kept in {where}; run the same command again to "
            "continue (the interrupted trial runs again).",
            flush=True,
        )
        raise
    print_front(study)
    print(
        f"Study {config.study!r} is kept in {where}: devnas pareto --storage "
        f"{shlex.quote(where)} --study {shlex.quote(config.study)}",
        flush=True,
    )
    return 0
