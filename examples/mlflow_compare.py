"""Compare two samplers in MLflow: DPPSampler and NSGA-II searching the same cell space.

Both studies train networks on digits for two objectives (validation error, parameter count of
the condensed network) and are tracked into one MLflow experiment: a parent run per study with
the search's settings and its hypervolume in one fixed box, a nested run per trial with its
architecture, training curve and Pareto tag. The comparison at the end is read back from
MLflow, not from the studies.

    python examples/mlflow_compare.py [--trials 12] [--epochs 1] [--tracking-uri URI]
    mlflow ui --backend-store-uri sqlite:///mlflow.db     # then open http://127.0.0.1:5000
"""

from __future__ import annotations

import argparse
import time
import warnings

from mlflow import MlflowClient
import optuna
import torch

from optuna_devnas import CellSpace, ValidationError, load_digits
from optuna_devnas.data import TensorData
from optuna_devnas.spaces import condense
from optuna_devnas.tracking import MLflowTracker


def progressive_sampler(seed: int) -> optuna.samplers.BaseSampler:
    try:
        from optuna_devnas.samplers import DPPSampler
    except ImportError:
        print("note: DPPSampler is not available in this build; using TPESampler instead")
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    return DPPSampler(seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12, help="trials per study")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-layers", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=None, help="training images used")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracking-uri", default=None, help="default: sqlite:///mlflow.db")
    parser.add_argument("--experiment", default="devnas-compare")
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    torch.set_num_threads(1)
    data = load_digits(seed=args.seed)
    if args.train_size is not None:
        n = args.train_size
        data = TensorData(data.name, data.train_x[:n], data.train_y[:n], data.val_x, data.val_y,
                          data.num_classes)  # fmt: skip
    space = CellSpace(max_layers=args.max_layers)
    train = ValidationError(data=data, epochs=args.epochs, seed=args.seed)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        model = train.build(space.suggest(trial))
        error = train.evaluate(model, trial=trial)  # per-epoch curve goes to MLflow
        return error, float(sum(p.numel() for p in condense(model).parameters()))

    # One fixed box for both studies, so that their hypervolumes compare: validation error from
    # 0 (best) to 1, parameters from 0 to 500k (bigger networks count for nothing).
    tracker = MLflowTracker(
        tracking_uri=args.tracking_uri,
        experiment_name=args.experiment,
        hypervolume_bounds=[(0.0, 1.0), (0.0, 500_000.0)],
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    samplers = {
        "dpp": progressive_sampler(args.seed),
        "nsga2": optuna.samplers.NSGAIISampler(seed=args.seed + 1, population_size=4),
    }
    names = {}
    for label, sampler in samplers.items():
        study = optuna.create_study(
            study_name=f"{label}-{stamp}", directions=["minimize", "minimize"], sampler=sampler
        )
        study.set_metric_names(["val_error", "params"])
        names[label] = study.study_name
        started = time.perf_counter()
        with tracker.track(study):
            study.optimize(objective, n_trials=args.trials, callbacks=[tracker])
        print(f"{study.study_name}: {args.trials} trials in {time.perf_counter() - started:.1f} s")

    # Everything below comes from MLflow.
    client = MlflowClient(tracker.tracking_uri)
    experiment = client.get_experiment_by_name(args.experiment)
    assert experiment is not None
    print(f"\nMLflow experiment {args.experiment!r} at {tracker.tracking_uri}:")
    header = f"{'study':<22} {'sampler':<15} {'runs':>4} {'best error':>10} {'smallest':>9} "
    print(header + f"{'front':>5} {'hypervolume':>11}")
    fronts = {}
    for label, name in names.items():
        parent = client.search_runs(
            [experiment.experiment_id],
            f"tags.`optuna.study_name` = '{name}' and tags.`devnas.role` = 'study'",
            order_by=["attributes.start_time DESC"],
        )[0]
        runs = client.search_runs(
            [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
        )
        done = [run for run in runs if "val_error" in run.data.metrics]
        fronts[label] = sorted(
            (run for run in done if run.data.tags.get("pareto") == "true"),
            key=lambda run: run.data.metrics["val_error"],
        )
        print(
            f"{name:<22} {parent.data.tags['optuna.sampler']:<15} {len(runs):>4} "
            f"{min(r.data.metrics['val_error'] for r in done):>10.4f} "
            f"{min(r.data.metrics['params'] for r in done):>9.0f} {len(fronts[label]):>5} "
            f"{parent.data.metrics['hypervolume']:>11.4f}"
        )
    for label, front in fronts.items():
        print(f"\nPareto front of {names[label]} (runs tagged pareto=true):")
        print(f"{'run':<7} {'val_error':>9} {'params':>7}  architecture")
        for run in front:
            print(
                f"{run.info.run_name.split()[-1]:<7} {run.data.metrics['val_error']:>9.4f} "
                f"{run.data.metrics['params']:>7.0f}  {run.data.params['architecture']}"
            )
    uri = tracker.tracking_uri
    if uri.startswith("sqlite:"):
        print(f"\nOpen it: mlflow ui --backend-store-uri {uri}")
    else:
        print(f"\nOpen it: {uri}")


if __name__ == "__main__":
    main()
