"""The ``devnas`` command: one sub-command per module of ``optuna_devnas.commands``.

Each sub-command module defines ``register(subparsers)``, which adds its parser and sets
``func`` to a function of the parsed arguments returning the exit code. Exit codes:

- 0: done;
- 2: an error a user can act on (:class:`~optuna_devnas.DevnasError`, ``ValueError``,
  ``OSError`` such as a missing or unwritable file), printed as one line on standard error,
  never as a traceback; this includes a search stopped because its objective keeps failing;
- 130: interrupted (Ctrl-C); a search continues where it stopped when run again.

Progress is the commands' own: Optuna's per-trial log lines are silenced, and each distinct
warning is shown once (none with ``--quiet``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
import importlib
import logging
import sys
from typing import Any, TextIO
import warnings

# Sub-command modules under optuna_devnas.commands, in the order ``devnas --help`` lists them.
COMMANDS: tuple[str, ...] = (
    "search",
    "worker",
    "pareto",
    "export",
    "profile",
    "retarget",
    "mlflow_sync",
)

# Loggers of libraries that speak on standard error at import or per trial; silenced with
# --quiet (Optuna's per-trial lines always: the commands print their own).
_LIBRARY_LOGGERS = ("torch.utils.cpp_extension",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devnas", description="Device-aware neural architecture search on Optuna."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"optuna_devnas.commands.{name}").register(subparsers)
    return parser


class _OnceEach:
    """``warnings.showwarning`` that shows each warning (category and place) once.

    Python's own "once per place" registry is reset whenever the warning filters change, which
    Optuna does around every trial, so library warnings would otherwise repeat every trial.
    """

    def __init__(self, show: Any) -> None:
        self.show = show
        self.seen: set[tuple[type[Warning], str, int]] = set()

    def __call__(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        key = (category, filename, lineno)
        if key not in self.seen:
            self.seen.add(key)
            self.show(message, category, filename, lineno, file, line)


@contextmanager
def _quiet_libraries(quiet: bool) -> Iterator[None]:
    """Optuna's logging at ERROR, each warning once (or none), restored afterwards."""
    import optuna
    from optuna.exceptions import ExperimentalWarning

    verbosity = optuna.logging.get_verbosity()
    levels = {name: logging.getLogger(name).level for name in _LIBRARY_LOGGERS}
    with warnings.catch_warnings():
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        # Heartbeats, metric names and artifacts are "experimental" in Optuna; say nothing of it.
        warnings.filterwarnings("ignore", category=ExperimentalWarning)
        warnings.showwarning = _OnceEach(warnings.showwarning)
        if quiet:
            warnings.simplefilter("ignore")
            for name in _LIBRARY_LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
        try:
            yield
        finally:
            optuna.logging.set_verbosity(verbosity)
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from optuna_devnas._errors import DevnasError

    with _quiet_libraries(bool(getattr(args, "quiet", False))):
        try:
            return int(args.func(args))
        except (DevnasError, ValueError, OSError) as error:
            print(f"devnas {args.command}: error: {_one_line(error)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"devnas {args.command}: interrupted", file=sys.stderr)
            return 130


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.strerror}: {error.filename!r}"
    return text or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
