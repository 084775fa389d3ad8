"""DPPSampler against NSGA-II and TPE with real training: CellSpace on digits, three objectives.

Each trial builds a CellSpace network, trains it on scikit-learn's digits
(``ValidationError(data="digits", epochs=E)``, fixed training seed) and returns (validation
error, CPU latency, parameter count), all minimized. Latency and parameter count depend on the
architecture only, so they are measured once per architecture of the space before the searches
(inference form ``spaces.condense(model)``, batch 1, one thread, the median over interleaved
rounds, to be robust to other jobs on a shared machine): every sampler sees the same values, and
DPPSampler gets them as exact cheap objectives. Training is deterministic for a given
architecture (same seed, one thread), so trained errors are memoized in ``--cache``: a later run
that proposes an already trained architecture reads its error instead of training again.

Hypervolume: each objective is divided by a fixed reference value and the reference point is
(1, 1, 1): error 0.9 (chance level on ten classes), latency and parameter count 1.1 times the
largest over the whole space. The hypervolume is a fraction of the unit cube (higher is better).
The gap is measured against the front of every architecture trained by any run of the same
invocation (the true front would need all architectures trained).

Usage (from the repository root)::

    nice -n 10 .venv/bin/python -m benchmarks.real_training --trials 60 --seeds 3 \\
        --cache benchmarks/results/digits_errors.jsonl --output benchmarks/results/real.md

``--data fashion_mnist`` trains on Fashion-MNIST instead (Debian's ``dataset-fashion-mnist``),
on a stratified subset of ``--train-size`` training images, validated on ``--val-size`` images
held out of the training set (the test set is never used).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import random
import sys
import time
from typing import Any

import numpy as np
import optuna
import torch

from benchmarks._nb201_table import normalized_hypervolume
from benchmarks._pages import write_results
from optuna_devnas.data import load_fashion_mnist
from optuna_devnas.objectives import ValidationError, measure_latency
from optuna_devnas.spaces import Architecture, CellSpace, condense

SAMPLERS = ("dpp", "nsga2", "tpe")
LABELS = {
    "dpp": "DPPSampler (latency, params cheap)",
    "nsga2": "NSGAIISampler(population_size=20)",
    "tpe": "TPESampler",
}
ERROR_REFERENCE = 0.9  # chance level on ten classes


def measure_space(space: CellSpace, input_shape: tuple[int, ...], rounds: int) -> dict:
    """Latency (median s over ``rounds`` interleaved rounds) and parameter count of every cell."""
    archs = [a for n in range(1, space.max_layers + 1) for a in space.enumerate(n)]
    models = {}
    for arch in archs:
        torch.manual_seed(0)
        models[str(arch)] = condense(arch.build(num_classes=10, input_shape=input_shape)).eval()
    x = torch.zeros(1, *input_shape)
    times: dict[str, list[float]] = {name: [] for name in models}
    order = list(models)
    rng = random.Random(0)
    for _ in range(rounds):  # interleaved: a burst of load spreads over many architectures
        rng.shuffle(order)
        for name in order:
            times[name].append(measure_latency(models[name], x, threads=1))
    return {
        name: {
            "latency": float(np.median(times[name])),
            "params": int(sum(p.numel() for p in models[name].parameters())),
        }
        for name in models
    }


class MemoizedError:
    """``ValidationError`` memoized by architecture in a JSON-lines file shared by all runs."""

    def __init__(self, train: ValidationError, path: str | None, data: str) -> None:
        self.train, self.path, self.trained, self.data = train, path, 0, data
        self.known: dict[str, float] = {}
        self._read()

    def _read(self) -> None:
        if self.path and Path(self.path).is_file():
            for line in Path(self.path).read_text().splitlines():
                row = json.loads(line)
                # Rows of another data set or epoch count are another experiment.
                if row["epochs"] == self.train.epochs and row.get("data", "digits") == self.data:
                    self.known[row["arch"]] = row["error"]

    def __call__(self, arch: Architecture) -> float:
        name = str(arch)
        if name not in self.known:
            self._read()
        if name not in self.known:
            self.known[name] = float(self.train(arch))
            self.trained += 1
            if self.path:
                with open(self.path, "a") as f:
                    row = {
                        "arch": name,
                        "data": self.data,
                        "epochs": self.train.epochs,
                        "error": self.known[name],
                    }
                    f.write(json.dumps(row) + "\n")
        return self.known[name]


def make_sampler(
    name: str, seed: int, cheap: dict[str, dict], space: CellSpace
) -> optuna.samplers.BaseSampler:
    if name == "dpp":
        from optuna_devnas.samplers import DPPSampler

        def latency(params: dict[str, Any]) -> float:
            return cheap[str(space.from_params(params))]["latency"]

        def size(params: dict[str, Any]) -> float:
            return float(cheap[str(space.from_params(params))]["params"])

        return DPPSampler(cheap_objectives={1: latency, 2: size}, seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=20, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def run(
    sampler: str,
    seed: int,
    n_trials: int,
    cheap: dict[str, dict],
    error: MemoizedError,
    space: CellSpace,
) -> dict[str, Any]:
    """One search; trial values, architectures and the sampler's time per trial."""
    study = optuna.create_study(
        directions=["minimize"] * 3, sampler=make_sampler(sampler, seed, cheap, space)
    )
    values, archs, sampler_s = [], [], []
    started, trained_before = time.perf_counter(), error.trained
    for _ in range(n_trials):
        t0 = time.perf_counter()
        trial = study.ask()
        arch = space.suggest(trial)
        t1 = time.perf_counter()
        point = [error(arch), cheap[str(arch)]["latency"], float(cheap[str(arch)]["params"])]
        t2 = time.perf_counter()
        study.tell(trial, point)
        sampler_s.append((t1 - t0) + (time.perf_counter() - t2))
        values.append(point)
        archs.append(str(arch))
    return {
        "sampler": sampler,
        "seed": seed,
        "values": values,
        "archs": archs,
        "sampler_s": sampler_s,
        "trained": error.trained - trained_before,
        "total_s": time.perf_counter() - started,
    }


def markdown(records: list[dict[str, Any]], reference: np.ndarray) -> str:
    """Hypervolume per sampler (median and per seed), gap to the pooled front, timings."""
    pooled = np.array([v for r in records for v in r["values"]])
    lower = np.zeros(3)
    best = normalized_hypervolume(pooled, lower, reference, reference=1.0)
    lines = [
        "| sampler | hypervolume, median | per seed | gap to pooled front (%) | distinct "
        "architectures | sampler s/trial, median | sampler s/trial, mean | run wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in SAMPLERS:
        runs = sorted((r for r in records if r["sampler"] == name), key=lambda r: r["seed"])
        if not runs:
            continue
        hv = [
            normalized_hypervolume(np.array(r["values"]), lower, reference, reference=1.0)
            for r in runs
        ]
        gaps = [100 * (1 - h / best) for h in hv]
        lines.append(
            f"| {LABELS[name]} | {np.median(hv):.4f} | {', '.join(f'{h:.4f}' for h in hv)} | "
            f"{np.median(gaps):.2f} | {np.median([len(set(r['archs'])) for r in runs]):.0f} | "
            f"{np.median([np.median(r['sampler_s']) for r in runs]):.3f} | "
            f"{np.median([np.mean(r['sampler_s']) for r in runs]):.3f} | "
            f"{np.median([r['total_s'] for r in runs]):.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per trial")
    parser.add_argument("--latency-rounds", type=int, default=3)
    parser.add_argument("--max-layers", type=int, default=4, help="CellSpace(max_layers=...)")
    parser.add_argument("--cache", help="JSON-lines memo of trained errors, shared by runs")
    parser.add_argument("--output", help="write the markdown table here")
    parser.add_argument("--records", help="append each run (values, architectures) as JSON lines")
    parser.add_argument("--data", default="digits", choices=("digits", "fashion_mnist"))
    parser.add_argument(
        "--train-size", type=int, default=5000, help="Fashion-MNIST training images kept"
    )
    parser.add_argument(
        "--val-size", type=int, default=2000, help="Fashion-MNIST images held out to validate"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    started = time.perf_counter()
    space = CellSpace(max_layers=args.max_layers)
    if args.data == "fashion_mnist":
        data = load_fashion_mnist(train_size=args.train_size, val_size=args.val_size, seed=0)
        train = ValidationError(data=data, epochs=args.epochs)
        label = f"fashion_mnist ({args.train_size} training, {args.val_size} validation images)"
    else:
        train, label = ValidationError(data="digits", epochs=args.epochs), "digits"
    cheap = measure_space(space, tuple(train.input_shape), args.latency_rounds)
    print(f"measured {len(cheap)} architectures in {time.perf_counter() - started:.0f} s")
    reference = np.array(
        [
            ERROR_REFERENCE,
            1.1 * max(c["latency"] for c in cheap.values()),
            1.1 * max(c["params"] for c in cheap.values()),
        ]
    )
    error = MemoizedError(train, args.cache, label)
    records = []
    for seed in range(args.seeds):
        for sampler in args.samplers.split(","):
            record = run(sampler, seed, args.trials, cheap, error, space)
            records.append(record)
            print(
                f"[{time.perf_counter() - started:6.0f}s] {sampler} seed {seed}: "
                f"{record['trained']} trained, {len(set(record['archs']))} distinct, "
                f"{record['total_s']:.0f} s",
                flush=True,
            )
    text = (
        f"Command: `{' '.join(['python -m benchmarks.real_training', *(argv or sys.argv[1:])])}`"
        f"\n\nMachine: {os.cpu_count()} cores, torch {torch.__version__}, one torch thread; "
        f"load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after (1-minute)."
        f"\n\nData: {label}. {args.trials} trials x {args.seeds} seeds, {args.epochs} epochs per "
        "training; "
        f"reference point: error {reference[0]}, latency {reference[1] * 1e3:.3f} ms, "
        f"{reference[2]:.0f} parameters; {error.trained} trainings in this run (the rest read "
        f"from `--cache`), {time.perf_counter() - started:.0f} s in all.\n\n"
        + markdown(records, reference)
        + "\n"
        + verdict(records, reference)
    )
    print(text)
    if args.output:
        write_results(Path(args.output), text, title="Benchmark: DPPSampler with real training")
    if args.records:
        with open(args.records, "a") as f:
            for record in records:
                f.write(json.dumps({"label": label, "reference": reference.tolist(), **record}))
                f.write("\n")
    return 0


def verdict(records: list[dict[str, Any]], reference: np.ndarray) -> str:
    """Per seed: is DPPSampler's hypervolume ahead of every other sampler's?"""
    lower = np.zeros(3)
    by_seed: dict[int, dict[str, float]] = {}
    for r in records:
        hv = normalized_hypervolume(np.array(r["values"]), lower, reference, reference=1.0)
        by_seed.setdefault(r["seed"], {})[r["sampler"]] = hv
    lines = []
    ahead = 0
    for seed, hvs in sorted(by_seed.items()):
        if "dpp" not in hvs or len(hvs) < 2:
            continue
        others = {k: v for k, v in hvs.items() if k != "dpp"}
        best = max(others, key=lambda k: others[k])
        won = hvs["dpp"] > others[best]
        ahead += won
        lines.append(
            f"- seed {seed}: DPPSampler {hvs['dpp']:.4f}, best other {LABELS[best]} "
            f"{others[best]:.4f}: {'ahead' if won else 'not ahead'}"
        )
    if not lines:
        return ""
    lines.append(f"\nDPPSampler ahead of every other sampler on {ahead} of {len(lines)} seeds.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
