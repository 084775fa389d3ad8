"""The ``devnas`` command: one sub-command per module of ``optuna_devnas.commands``.

Each sub-command module defines ``register(subparsers)``, which adds its parser and sets
``func`` to a function of the parsed arguments returning the exit code. User errors
(:class:`~optuna_devnas.DevnasError`, ``ValueError``, ``FileNotFoundError``) are printed as one
line on standard error with exit code 2, never as a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import importlib
import logging
import sys
import warnings

# Sub-command modules under optuna_devnas.commands, in the order ``devnas --help`` lists them.
COMMANDS: tuple[str, ...] = ("search", "worker", "pareto", "export", "profile", "mlflow_sync")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devnas", description="Device-aware neural architecture search on Optuna."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"optuna_devnas.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"optuna_devnas.commands.{name}":
                raise
            continue  # sub-command not written yet
        module.register(subparsers)
    return parser


class _WithoutTraceback(logging.Filter):
    """Keep Optuna's one-line "Trial N failed ... because of ..." warning, drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


def main(argv: Sequence[str] | None = None) -> int:
    logging.getLogger("optuna.study._optimize").addFilter(_WithoutTraceback())
    # Heartbeats, metric names and artifacts are "experimental" in Optuna; say nothing of it.
    from optuna.exceptions import ExperimentalWarning

    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    from optuna_devnas._errors import DevnasError

    try:
        return int(args.func(args))
    except (DevnasError, ValueError, FileNotFoundError) as error:
        print(f"devnas {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"devnas {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
