"""DPPSampler in a few lines: DPP-Net's progressive search on digits, size as a cheap objective.

Trains small DPP-Net cells on scikit-learn's digits for two objectives, validation error
(trained, so modelled by the sampler's Gaussian process) and parameter count (computed exactly
by the sampler for every candidate, without training). Stage 1 trains the six one-layer cells,
each later stage the ``k`` two-layer children the acquisition ranks best. Prints each trial's
stage, cell, values and the surrogate's prediction made when it was proposed.

    python examples/dpp_sampler.py [--trials 10] [--k 2] [--epochs 1]
"""

from __future__ import annotations

import argparse

import optuna

from optuna_devnas import CellSpace
from optuna_devnas.objectives import ParamCount, ValidationError
from optuna_devnas.samplers import PREDICTION_KEY, STAGE_KEY, DPPSampler


def main(argv: list[str] | None = None) -> optuna.Study:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--k", type=int, default=2, help="cells trained per stage after the first")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)

    space = CellSpace(max_layers=2, depths=(1, 1), growth_rates=(8, 16))
    train = ValidationError(data="digits", epochs=args.epochs)
    size = ParamCount(input_shape=(1, 8, 8))

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        arch = space.suggest(trial)
        return train(arch, trial=trial), size(arch)

    sampler = DPPSampler(space=space, k=args.k, cheap_objectives={1: size.for_space(space)})
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=args.trials)

    for trial in study.trials:
        prediction = trial.system_attrs.get(PREDICTION_KEY) or {}
        predicted = prediction.get("0")
        guess = f"predicted {predicted['mean']:.3f}+-{predicted['std']:.3f}" if predicted else ""
        cell = space.from_params(trial.params)
        print(
            f"trial {trial.number:2d}  stage {trial.system_attrs.get(STAGE_KEY)}  "
            f"{str(cell):40s} error {trial.values[0]:.3f}  params {trial.values[1]:7.0f}  {guess}"
        )
    print("Pareto front:", [str(space.from_params(t.params)) for t in study.best_trials])
    return study


if __name__ == "__main__":
    main()
