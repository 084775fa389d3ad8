"""``devnas pareto``: print a study's Pareto front as a table or CSV.

A study without a complete trial yet (the moment one checks on a search that just started) has
no front: the command says so in one line and exits with 0; with ``--csv`` it prints the header
row only.
"""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

import optuna

from optuna_devnas.commands._progress import readable
from optuna_devnas.spaces import ARCHITECTURE_ATTR


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pareto", help="print the Pareto front", description="Print a study's Pareto front."
    )
    parser.add_argument("--storage", required=True, help="Optuna storage URL")
    parser.add_argument("--study", required=True, help="study name")
    parser.add_argument("--csv", action="store_true", help="CSV instead of a table")
    parser.set_defaults(func=run)


def front_rows(study: optuna.Study) -> tuple[list[str], list[list[Any]]]:
    """The header and one row per Pareto-optimal trial, by the first objective."""
    names = study.metric_names or [f"value_{i}" for i in range(len(study.directions))]
    header = ["trial", *names, "architecture"]
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return header, []
    rows = []
    for trial in sorted(study.best_trials, key=lambda t: t.values[0]):
        arch = trial.user_attrs.get(ARCHITECTURE_ATTR)
        cell = "-".join(arch["layers"]) if isinstance(arch, dict) else ""
        rows.append([trial.number, *trial.values, cell])
    return header, rows


def print_front(study: optuna.Study, *, as_csv: bool = False) -> None:
    header, rows = front_rows(study)
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        if not rows:
            print(f"Study {study.study_name!r} has no complete trial yet.", file=sys.stderr)
        return
    if not rows:
        print(f"Study {study.study_name!r} has no complete trial yet.")
        return
    shown = [[readable(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in shown)) for i, h in enumerate(header)]
    print(f"Pareto front of {study.study_name!r}: {len(rows)} trial(s)")
    print("  ".join(str(h).rjust(w) for h, w in zip(header[:-1], widths)) + "  " + header[-1])
    for row in shown:
        print("  ".join(v.rjust(w) for v, w in zip(row[:-1], widths)) + "  " + row[-1])


def run(args: argparse.Namespace) -> int:
    from optuna_devnas.commands._storage import open_existing_storage

    storage = open_existing_storage(args.storage)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if args.study not in names:
        shown = ", ".join(repr(n) for n in sorted(names)[:10]) or "none"
        raise ValueError(
            f"No study named {args.study!r} in {args.storage!r} (studies there: {shown})."
        )
    study = optuna.load_study(study_name=args.study, storage=storage)
    print_front(study, as_csv=args.csv)
    return 0
