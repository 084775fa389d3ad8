"""DPPSampler from OptunaHub: DPP-Net's progressive search over cells trained on digits.

Two objectives: validation error (trained for one epoch, so modelled by the sampler's Gaussian
process) and parameter count (computed exactly for every candidate, without training). Stage 1
trains the six one-layer cells, each later stage the ``k`` two-layer children ranked best.

    pip install optuna-devnas optunahub
    python example.py [--trials 10] [--local]

``--local`` loads the package from this folder's registry checkout (``package/``) instead of
the OptunaHub registry, as OptunaHub's guide does to test a package before submitting it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import optuna
import optunahub

from optuna_devnas import CellSpace
from optuna_devnas.objectives import ParamCount, ValidationError

PACKAGE = "samplers/dpp_sampler"


def main(argv: list[str] | None = None) -> optuna.Study:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--local", action="store_true", help="load from this checkout")
    args = parser.parse_args(argv)

    if args.local:
        registry_root = str(Path(__file__).resolve().parents[2])
        module = optunahub.load_local_module(package=PACKAGE, registry_root=registry_root)
    else:
        module = optunahub.load_module(package=PACKAGE)

    space = CellSpace(max_layers=2, depths=(1, 1), growth_rates=(8, 16))
    train = ValidationError(data="digits", epochs=1)
    size = ParamCount(input_shape=(1, 8, 8))

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        arch = space.suggest(trial)
        return train(arch, trial=trial), size(arch)

    sampler = module.DPPSampler(space=space, k=2, cheap_objectives={1: size.for_space(space)})
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=args.trials)
    print("Pareto front:", [str(space.from_params(t.params)) for t in study.best_trials])
    return study


if __name__ == "__main__":
    main()
