"""``devnas search``: create (or continue) a study and run a search, showing progress."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from optuna_devnas.commands._config import SearchConfig


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search",
        help="run an architecture search",
        description="Run a device-aware architecture search. Flags override the --config file.",
    )
    parser.add_argument("--config", help="JSON or TOML file with SearchConfig keys")
    add_config_flags(parser)
    parser.add_argument("--quiet", action="store_true", help="no per-trial progress lines")
    parser.set_defaults(func=run)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per SearchConfig field (``--max-layers`` for ``max_layers``)."""
    for item in fields(SearchConfig):
        flag = "--" + item.name.replace("_", "-")
        kind = str(item.type)
        if kind.startswith("list"):
            parser.add_argument(flag, dest=item.name, help=f"comma-separated ({kind})")
        else:
            parser.add_argument(flag, dest=item.name, help=kind)


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    base = SearchConfig.from_file(args.config) if args.config else SearchConfig()
    values = base.to_dict()
    defaults = SearchConfig().to_dict()
    for item in fields(SearchConfig):
        raw = getattr(args, item.name, None)
        if raw is None:
            continue
        values[item.name] = _parse(item.name, raw, defaults[item.name], str(item.type))
    return SearchConfig.from_dict(values, source="command line")


def _parse(name: str, raw: str, default: Any, kind: str) -> Any:
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
    from optuna_devnas.commands._job import SearchJob

    config = config_from_args(args)
    job = SearchJob(config)
    study = job.create_study()
    print(
        f"devnas search: study {config.study!r} in {config.storage}: {config.trials} trials, "
        f"sampler {config.sampler}, objectives {config.metric_names}",
        flush=True,
    )
    job.optimize(study, n_trials=config.trials, show_progress=not args.quiet)
    from optuna_devnas.commands.pareto import print_front

    print_front(study, config)
    return 0
