"""``devnas mlflow-sync``: replay an Optuna study into MLflow, idempotently.

The Optuna storage is the record; this brings MLflow up to date with it after a tracking server
was down, or for a study that ran without a tracker. Running it twice creates no duplicate runs.

    devnas mlflow-sync --storage sqlite:///search.db --study dpp \\
        --tracking-uri http://127.0.0.1:5000 --experiment nas
"""

from __future__ import annotations

import argparse
from typing import Any

from optuna_devnas._errors import DevnasError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mlflow-sync",
        help="replay an Optuna study into MLflow (idempotent)",
        description=(
            "Write every trial of an Optuna study to MLflow: a parent run for the study and a "
            "nested run per trial, the Pareto front on the parent. Runs already in MLflow are "
            "found by their tags and completed, never duplicated."
        ),
    )
    parser.add_argument("--storage", required=True, help="Optuna storage URL of the study")
    parser.add_argument("--study", required=True, help="study name in the storage")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
    )
    parser.add_argument(
        "--experiment", default=None, help="MLflow experiment (default: the study name)"
    )
    parser.add_argument(
        "--metric-names",
        default=None,
        help="comma-separated objective names, for studies without study.metric_names",
    )
    parser.add_argument(
        "--hypervolume-bounds",
        default=None,
        metavar="BEST,WORST;...",
        help=(
            "per objective, the best and worst value normalising the parent run's hypervolume, "
            "e.g. '0,1;0,100000' (default: the bounds stored with the study, if any)"
        ),
    )
    parser.add_argument(
        "--no-pareto", action="store_true", help="do not log the Pareto front or tag members"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optuna_devnas.commands._storage import first_line, open_existing_storage
    from optuna_devnas.tracking import resolve_tracking_uri, sync_study

    metric_names = None if args.metric_names is None else args.metric_names.split(",")
    bounds = None
    if args.hypervolume_bounds is not None:
        bounds = [pair.split(",") for pair in args.hypervolume_bounds.split(";")]
    storage = open_existing_storage(args.storage)
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    try:
        result = sync_study(
            storage,
            args.study,
            tracking_uri=tracking_uri,
            experiment_name=args.experiment,
            metric_names=metric_names,
            log_pareto_front=not args.no_pareto,
            hypervolume_bounds=bounds,
        )
    except ValueError:
        raise
    except Exception as error:  # noqa: BLE001 - an unreachable or failing tracking store
        raise DevnasError(
            f"could not write to MLflow at {tracking_uri}: {type(error).__name__}: "
            f"{first_line(error)}"
        ) from None
    print(
        f"Synced study {args.study!r} into MLflow at {tracking_uri}, experiment "
        f"{args.experiment or args.study!r} (parent run {result.parent_run_id}): "
        f"{result.created} trial runs created, {result.updated} updated, "
        f"{result.unchanged} unchanged; {result.deleted} duplicate runs deleted."
    )
    return 0
