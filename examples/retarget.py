"""One search, two devices: retarget a finished search to a new device without retraining.

Searches DPP-Net's cell space on digits for device A (this CPU with one thread, latency from a
``LatencyTable`` profiled here), then copies the study to device B (the same CPU with two
threads, its own table) with ``optuna_devnas.retarget``: every trained network keeps its
validation error, and its latency is recomputed from B's table. B's Pareto front is printed at
once, before any training; then ``DPPSampler`` trains a few more networks for B, where B's
front lacks them.

    python examples/retarget.py [--trials 20] [--more 6] [--epochs 2]
"""

from __future__ import annotations

import argparse
import warnings

import optuna
import torch

from optuna_devnas import CellSpace, LatencyTable, ValidationError, load_digits, retarget
from optuna_devnas.samplers import DPPSampler


def front(study: optuna.Study, space: CellSpace) -> str:
    rows = sorted(study.best_trials, key=lambda t: t.values[1])
    return "\n".join(
        f"  {t.values[0]:.4f} error  {t.values[1]:.3f} ms  {space.from_params(t.params)}"
        for t in rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trained for device A")
    parser.add_argument("--more", type=int, default=6, help="trained for device B afterwards")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-layers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    torch.set_num_threads(1)
    space = CellSpace(max_layers=args.max_layers)
    data = load_digits(seed=args.seed)
    train = ValidationError(data=data, epochs=args.epochs, seed=args.seed)
    shape = (1, *data.input_shape)
    tables = {
        name: LatencyTable.profile(space, input_shape=shape, threads=threads, calibration=4)
        for name, threads in (("A", 1), ("B", 2))
    }
    latency = {name: table.for_space(space) for name, table in tables.items()}

    def milliseconds(device: str) -> object:
        return lambda params: 1e3 * latency[device](params)

    def objective_for(device: str) -> object:
        def objective(trial: optuna.Trial) -> tuple[float, float]:
            arch = space.suggest(trial)
            return train(arch, trial=trial), 1e3 * latency[device](trial.params)

        return objective

    directions = ["minimize", "minimize"]
    device_a = optuna.create_study(
        directions=directions,
        sampler=DPPSampler(space=space, cheap_objectives={1: milliseconds("A")}, seed=args.seed),
    )
    device_a.optimize(objective_for("A"), n_trials=args.trials)
    print(f"Device A (1 thread): {args.trials} networks trained; its Pareto front:")
    print(front(device_a, space))

    device_b = optuna.create_study(
        directions=directions,
        sampler=DPPSampler(space=space, cheap_objectives={1: milliseconds("B")}, seed=args.seed),
    )
    copied = retarget(device_a, device_b, objectives={1: milliseconds("B")})
    print(f"Device B (2 threads): {copied} trials copied, no training; its Pareto front:")
    print(front(device_b, space))
    device_b.optimize(objective_for("B"), n_trials=args.more)
    print(f"Device B after {args.more} more networks trained for it:")
    print(front(device_b, space))


if __name__ == "__main__":
    main()
