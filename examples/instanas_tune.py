"""Tune InstaNAS's reward weights with an Optuna study and print the (error, latency) front.

Every trial is one whole InstaNAS run (meta-graph pre-training, controller search, fine-tuning)
whose reward weights (``pos_w``, ``neg_w``) and final latency bound (``upper_end``) come from
the trial; it returns the validation error and the measured mean seconds per image of the
instance-aware network. The option latency table is measured once and shared by all trials.

    python examples/instanas_tune.py --trials 12                  # digits 32x32, ~1 h on 1 core
    python examples/instanas_tune.py --trials 2 --data digits \\
        --width-mult 0.25 --epochs 1,1,0 --train-images 128 --table-rounds 1  # a quick check

With ``--tracking-uri`` every trial's controller reward, accuracy, latency and policy entropy
curves go to MLflow (``optuna_devnas.tracking.MLflowTracker``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import dataclasses
import warnings

import optuna
from optuna.distributions import FloatDistribution

from optuna_devnas.data import load_data
from optuna_devnas.instanas import InstaNASConfig, InstaNASObjective

REWARD_SPACE = {
    "pos_w": FloatDistribution(3.0, 50.0, log=True),
    "neg_w": FloatDistribution(-10.0, 0.0),
    "upper_end": FloatDistribution(0.5, 1.5),
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--data", default="digits32", help="digits, digits32, cifar10, cifar100")
    parser.add_argument("--data-root", help="folder of CIFAR (never downloaded)")
    parser.add_argument("--train-images", type=int, help="use only this many training images")
    parser.add_argument("--width-mult", type=float, default=0.5)
    parser.add_argument("--stem-stride", type=int, default=None)
    parser.add_argument(
        "--epochs", default="2,4,2", help="pre-train, search and fine-tune epochs (default 2,4,2)"
    )
    parser.add_argument("--latency-images", type=int, default=16, help="timed one by one")
    parser.add_argument("--table-rounds", type=int, default=3, help="option table rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracking-uri", help="MLflow tracking URI, e.g. sqlite:///mlflow.db")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pretrain, search, finetune = (int(e) for e in args.epochs.split(","))
    data = load_data(args.data, root=args.data_root)
    if args.train_images is not None:
        data = dataclasses.replace(
            data,
            train_x=data.train_x[: args.train_images],
            train_y=data.train_y[: args.train_images],
        )
    config = InstaNASConfig(
        width_mult=args.width_mult,
        stem_stride=args.stem_stride,
        pretrain_epochs=pretrain,
        search_epochs=search,
        finetune_epochs=finetune,
        controller_resolution=8 if args.data.startswith("digits") else 16,
        controller_width=8,
        latency_images=args.latency_images,
        measure_every_epoch=False,
        table_rounds=args.table_rounds,
        seed=args.seed,
    )
    objective = InstaNASObjective(data=data, config=config, search_space=REWARD_SPACE)
    study = optuna.create_study(
        directions=["minimize", "minimize"],
        sampler=optuna.samplers.TPESampler(seed=args.seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_error", "latency_s"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.tracking_uri:
        from optuna_devnas.tracking import MLflowTracker

        tracker = MLflowTracker(tracking_uri=args.tracking_uri, experiment_name="instanas-tune")
        with tracker.track(study):
            study.optimize(objective, n_trials=args.trials, callbacks=[tracker])
    else:
        study.optimize(objective, n_trials=args.trials)

    print(f"{len(study.trials)} trials; option latency table: {objective.table_for(config)!r}")
    print("Pareto front:")
    print(
        f"{'trial':>5} {'val_error':>9} {'ms/image':>9} {'pos_w':>6} {'neg_w':>6} "
        f"{'upper_end':>9} {'children':>8}"
    )
    for trial in sorted(study.best_trials, key=lambda t: t.values[1]):
        p = trial.params
        print(
            f"{trial.number:>5} {trial.values[0]:>9.4f} {1e3 * trial.values[1]:>9.3f} "
            f"{p['instanas.pos_w']:>6.2f} {p['instanas.neg_w']:>6.2f} "
            f"{p['instanas.upper_end']:>9.3f} {trial.user_attrs['instanas:children']:>8}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
