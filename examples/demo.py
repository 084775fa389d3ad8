"""The main job of ``make demo``: a real device-aware architecture search on digits.

Searches DPP-Net's cell space with ``DPPSampler`` for networks that are accurate, fast on this
CPU and small: three objectives (validation error, measured CPU latency at batch 1, parameter
count), 30 trained networks, a few minutes on two cores. Latency and size are cheap objectives:
the sampler computes them exactly for every candidate child before choosing what to train.
Prints each trial as it finishes (with its stage) and the Pareto front at the end.

    python examples/demo.py [--trials 30] [--epochs 3] [--storage sqlite:///demo.db]
"""

from __future__ import annotations

import argparse
import time
import warnings

import optuna
import torch

from optuna_devnas import CellSpace, Latency, ParamCount, ValidationError, load_digits
from optuna_devnas.samplers import STAGE_KEY, DPPSampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-layers", type=int, default=4)
    parser.add_argument("--k", type=int, default=8, help="networks trained per stage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: memory)")
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")
    torch.set_num_threads(1)  # latency is measured single-threaded, as on a small device
    data = load_digits(seed=args.seed)
    space = CellSpace(max_layers=args.max_layers)
    train = ValidationError(data=data, epochs=args.epochs, seed=args.seed)
    shape = (1, *data.input_shape)
    # Cheap objectives as functions of a trial's parameters, cached per architecture: the
    # sampler calls them for candidates, the objective returns the very same numbers.
    latency = Latency(input_shape=shape, threads=1).for_space(space)
    params = ParamCount(input_shape=shape).for_space(space)

    def latency_ms(trial_params: dict[str, object]) -> float:
        return 1e3 * latency(trial_params)

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        arch = space.suggest(trial)
        error = train(arch, trial=trial)
        return error, latency_ms(trial.params), params(trial.params)

    sampler = DPPSampler(
        space=space, k=args.k, cheap_objectives={1: latency_ms, 2: params}, seed=args.seed
    )
    study = optuna.create_study(
        directions=["minimize", "minimize", "minimize"], sampler=sampler, storage=args.storage
    )
    study.set_metric_names(["val_error", "latency_ms", "params"])
    print(f"Searching {space} with DPPSampler(k={args.k}): {args.trials} trials")
    header = f"{'trial':>5}  {'stage':>5}  {'error':>6}  {'lat ms':>7}  {'params':>8}  {'secs':>5}"
    print(header + "  cell")
    started = time.perf_counter()
    last_stage: list[object] = [None]

    def show(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        stage = trial.system_attrs.get(STAGE_KEY, "-")
        if stage != last_stage[0]:
            print(f"--- stage {stage} ---")
            last_stage[0] = stage
        if trial.values is None:
            print(f"{trial.number:>5}  {stage!s:>5}  {trial.state.name}")
            return
        error, lat, size = trial.values
        secs = trial.duration.total_seconds() if trial.duration else float("nan")
        cell = "-".join(space.from_params(trial.params).layers)
        print(
            f"{trial.number:>5}  {stage!s:>5}  {error:6.3f}  {lat:7.3f}  {size:8.0f}  "
            f"{secs:5.1f}  {cell}"
        )

    study.optimize(objective, n_trials=args.trials, callbacks=[show])
    print(f"\nDone in {time.perf_counter() - started:.0f} s. Pareto front:")
    print(f"{'trial':>5}  {'error':>6}  {'lat ms':>7}  {'params':>8}  cell")
    for trial in sorted(study.best_trials, key=lambda t: t.values[1]):
        error, lat, size = trial.values
        cell = "-".join(space.from_params(trial.params).layers)
        print(f"{trial.number:>5}  {error:6.3f}  {lat:7.3f}  {size:8.0f}  {cell}")


if __name__ == "__main__":
    main()
