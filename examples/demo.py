"""The main job of ``make demo``: a real device-aware architecture search on digits.

Searches DPP-Net's cell space for networks that are accurate, fast on this CPU and small:
three objectives (validation error, measured CPU latency at batch 1, parameter count), about
30 trained networks, a few minutes on two cores. Prints each trial as it finishes and the
Pareto front at the end.

    python examples/demo.py [--trials 30] [--epochs 3] [--storage sqlite:///demo.db]
"""

from __future__ import annotations

import argparse
import time
import warnings

import optuna
import torch

from optuna_devnas import CellSpace, ValidationError, load_digits
from optuna_devnas.objectives import measure_latency
from optuna_devnas.spaces import condense


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-layers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: memory)")
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    torch.set_num_threads(1)  # latency is measured single-threaded; training stays comparable
    data = load_digits(seed=args.seed)
    space = CellSpace(max_layers=args.max_layers)
    train = ValidationError(data=data, epochs=args.epochs, seed=args.seed)
    example = data.val_x[:1]

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        arch = space.suggest(trial)
        model = train.build(arch)
        error = train.evaluate(model, trial=trial)
        deployed = condense(model).eval()
        latency_ms = 1e3 * measure_latency(deployed, example, threads=1)
        params = float(sum(p.numel() for p in deployed.parameters()))
        return error, latency_ms, params

    sampler = optuna.samplers.NSGAIISampler(population_size=10, seed=args.seed)
    study = optuna.create_study(
        directions=["minimize", "minimize", "minimize"],
        sampler=sampler,
        storage=args.storage,
    )
    study.set_metric_names(["val_error", "latency_ms", "params"])
    print(f"Searching {space} with {type(sampler).__name__}: {args.trials} trials")
    print(f"{'trial':>5}  {'error':>6}  {'lat ms':>7}  {'params':>8}  {'secs':>5}  cell")
    started = time.perf_counter()

    def show(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.values is None:
            print(f"{trial.number:>5}  {trial.state.name}")
            return
        error, latency, params = trial.values
        secs = (trial.duration.total_seconds()) if trial.duration else float("nan")
        cell = "-".join(space.from_params(trial.params).layers)
        print(
            f"{trial.number:>5}  {error:6.3f}  {latency:7.3f}  {params:8.0f}  {secs:5.1f}  {cell}"
        )

    study.optimize(objective, n_trials=args.trials, callbacks=[show])
    print(f"\nDone in {time.perf_counter() - started:.0f} s. Pareto front:")
    print(f"{'trial':>5}  {'error':>6}  {'lat ms':>7}  {'params':>8}  cell")
    for trial in sorted(study.best_trials, key=lambda t: t.values[1]):
        error, latency, params = trial.values
        cell = "-".join(space.from_params(trial.params).layers)
        print(f"{trial.number:>5}  {error:6.3f}  {latency:7.3f}  {params:8.0f}  {cell}")


if __name__ == "__main__":
    main()
