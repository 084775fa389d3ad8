"""InstaNAS against static MobileNetV2 baselines on digits resized to 32x32, on this machine.

Trains, with the same number of epochs, learning rate and batch size:

- InstaNAS: a MobileNetV2 meta-graph (17 blocks x 5 options) with its controller, through the
  three phases (pre-training, search, fine-tuning), reward with the shrinking latency bound,
  option latency table measured here first;
- torchvision's MobileNetV2 at several width multipliers on the same stage layout.

The option latency table is timed once, first, on one CPU thread, whatever ``--device`` trains
the networks, and every run shares it. With ``--seeds 0,1,2`` every network is trained once per
seed (the seed also draws the validation split). After all training, every network of every
seed is timed on the same validation images at batch size 1 on one CPU thread, in interleaved
rounds (each network keeps its median), by default with the thread-CPU-time clock, so other
processes on the machine disturb the comparison less (``--clock wall`` on an idle machine).
The instance-aware network pays for its controller and runs each image's own child.

Reported per network and seed: validation error and mean latency per image, both relative to
the MobileNetV2 1.0x of the same seed, and with several seeds their means; for InstaNAS also
the table's prediction, the number of children used and how often. The target is judged on
the means over the seeds.
With ``--output`` the results go into a markdown file between ``<!-- results:start -->`` and
``<!-- results:end -->`` (the rest of the file is kept). CIFAR-10 runs with
``--data cifar10 --data-root <folder>`` (a GPU is advisable: ``--device cuda``).

    OMP_NUM_THREADS=1 python benchmarks/instanas.py --output docs/benchmarks-instanas.md
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
import os
from pathlib import Path
import shlex
import statistics
import sys
import time

import torch
from torch import nn
import torchvision

from benchmarks._pages import write_results
from optuna_devnas.data import TensorData, load_data, load_fashion_mnist
from optuna_devnas.instanas import (
    ChildEvaluation,
    ChildNetwork,
    InstaNAS,
    InstaNASConfig,
    InstaNASResult,
    OptionLatencyTable,
    evaluate_children,
    measure_per_image_latency,
    train_baseline,
)
from optuna_devnas.objectives._timing import CLOCKS

Key = tuple[str, int]  # (network, seed)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", default="digits32", help="digits32, fashion_mnist32, cifar10 or cifar100"
    )
    parser.add_argument("--data-root", help="folder of CIFAR or Fashion-MNIST (no download)")
    parser.add_argument(
        "--train-size", type=int, help="fashion_mnist32: stratified training subset (default all)"
    )
    parser.add_argument(
        "--val-size",
        type=int,
        default=10_000,
        help="fashion_mnist32: validation images held out of the training set (default 10000)",
    )
    parser.add_argument("--widths", default="0.5,1.0", help="MobileNetV2 width multipliers")
    parser.add_argument("--width-mult", type=float, default=0.5, help="InstaNAS meta-graph width")
    parser.add_argument("--stem-stride", type=int, default=2, help="stem stride of all networks")
    parser.add_argument("--epochs", default="2,3,10", help="InstaNAS pre-train,search,fine-tune")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--controller-lr", type=float, default=0.01)
    parser.add_argument("--pos-w", type=float, default=30.0)
    parser.add_argument("--neg-w", type=float, default=0.0)
    parser.add_argument("--entropy-weight", type=float, default=0.8)
    parser.add_argument(
        "--max-children",
        type=int,
        default=50,
        help="score at most this many of the most used children as static networks",
    )
    parser.add_argument("--upper-start", type=float, default=0.7)
    parser.add_argument(
        "--upper-ends", default="0.85,1.0", help="one InstaNAS run per final bound (x L_mbv2)"
    )
    parser.add_argument("--latency-images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=9, help="interleaved latency rounds")
    parser.add_argument("--table-rounds", type=int, default=3, help="rounds of the option table")
    parser.add_argument(
        "--clock", default="auto", choices=CLOCKS, help="auto: thread CPU time (1 thread)"
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, one run each")
    parser.add_argument("--device", default="cpu", help="training device (latency: CPU)")
    parser.add_argument("--output", help="markdown file to write the results into")
    return parser.parse_args(argv)


def load(args: argparse.Namespace, seed: int) -> TensorData:
    if args.data == "fashion_mnist32":
        # Validation is held out of the training images (never the test set), so the
        # reward weights and schedules tuned on it do not see the reported images.
        return load_fashion_mnist(
            args.data_root,
            seed=seed,
            train_size=args.train_size,
            val_size=args.val_size,
            size=32,
            channels=3,
        )
    return load_data(args.data, root=args.data_root, seed=seed)


def describe_data(args: argparse.Namespace) -> str:
    if args.data == "fashion_mnist32":
        kept = "all" if args.train_size is None else str(args.train_size)
        return (
            f"fashion_mnist32 (Fashion-MNIST at 3x32x32: {kept} training images, "
            f"{args.val_size} validation images held out of the training set by each seed)"
        )
    if args.data == "digits32":
        return (
            "digits32 (validation split: 360 of scikit-learn's 1,797 digits, drawn by each seed)"
        )
    return f"{args.data} (the test split as validation)"


def measure_all(
    networks: dict[Key, nn.Module], images: torch.Tensor, rounds: int, clock: str
) -> tuple[dict[Key, float], dict[Key, float]]:
    """Per network, the median over interleaved rounds of its mean CPU seconds per image, and
    the spread of the rounds ((max - min) / median), a measure of this machine's noise."""
    times: dict[Key, list[float]] = {name: [] for name in networks}
    for round_index in range(rounds):
        names = list(networks) if round_index % 2 == 0 else list(networks)[::-1]
        for name in names:
            times[name].append(
                measure_per_image_latency(networks[name].eval(), images, clock=clock)
            )
    medians = {name: statistics.median(values) for name, values in times.items()}
    spread = {name: (max(v) - min(v)) / medians[name] for name, v in times.items()}
    return medians, spread


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    pretrain, search, finetune = (int(e) for e in args.epochs.split(","))
    upper_ends = [float(u) for u in args.upper_ends.split(",")]
    widths = [float(w) for w in args.widths.split(",")]

    def configs(seed: int) -> list[InstaNASConfig]:
        return [
            InstaNASConfig(
                width_mult=args.width_mult,
                stem_stride=args.stem_stride,
                pretrain_epochs=pretrain,
                search_epochs=search,
                finetune_epochs=finetune,
                lr=args.lr,
                controller_lr=args.controller_lr,
                pos_w=args.pos_w,
                neg_w=args.neg_w,
                entropy_weight=args.entropy_weight,
                upper_start=args.upper_start,
                upper_end=upper_end,
                controller_resolution=8 if args.data.startswith("digits") else 16,
                controller_width=8,
                latency_images=args.latency_images,
                measure_every_epoch=False,
                seed=seed,
                device=args.device,
            )
            for upper_end in upper_ends
        ]

    config = configs(seeds[0])[0]
    first = load(args, seeds[0])
    # The table is timed once, on the CPU that the networks are timed on at the end, whatever
    # device trains them; every run of every seed shares it, as one device's table would be.
    t0 = time.perf_counter()
    table = OptionLatencyTable.measure(
        InstaNAS(config=config).build(first)[0],
        rounds=args.table_rounds,
        clock=args.clock,
        device="cpu",
        seed=seeds[0],
    )
    print(f"Option latency table measured in {time.perf_counter() - t0:.0f} s", flush=True)
    results: dict[Key, InstaNASResult] = {}
    errors: dict[Key, float] = {}
    networks: dict[Key, nn.Module] = {}
    train_seconds: dict[str, list[float]] = {}
    studies: dict[Key, ControllerStudy] = {}

    def trained(key: Key, started: float, error: float, network: nn.Module) -> None:
        train_seconds.setdefault(key[0], []).append(time.perf_counter() - started)
        errors[key], networks[key] = error, network.cpu()
        print(f"{key} trained in {train_seconds[key[0]][-1]:.0f} s: error {error:.4f}", flush=True)

    for seed in seeds:
        data = first if seed == seeds[0] else load(args, seed)
        for variant in configs(seed):
            key = (f"InstaNAS (U_T = {variant.upper_end} L_mbv2)", seed)
            t0 = time.perf_counter()
            results[key] = result = InstaNAS(config=variant, latency_table=table).fit(data)
            trained(key, t0, result.val_error, result.network)
            studies[key] = study_controller(result, data, table, args.max_children)
            best = studies[key].best_child
            networks[(f"best single child of {key[0]}", seed)] = ChildNetwork(
                meta_graph=result.network.meta_graph, child=best.child
            ).cpu()
            for record in result.history:
                print(
                    "  ",
                    {k: round(v, 5) if isinstance(v, float) else v for k, v in record.items()},
                )
        for width in widths:
            key = (f"MobileNetV2 {width}x", seed)
            t0 = time.perf_counter()
            baseline = train_baseline(
                data,
                width_mult=width,
                epochs=config.total_epochs,
                lr=args.lr,
                weight_decay=config.weight_decay,
                batch_size=config.batch_size,
                stem_stride=args.stem_stride,
                seed=seed,
                device=args.device,
            )
            trained(key, t0, baseline.val_error, baseline.model)

    # Every network of every seed is timed on the same images (the first seed's validation
    # images), in interleaved rounds, after all training, so that nothing else runs meanwhile.
    images = first.val_x[: args.latency_images]
    latency, spread = measure_all(networks, images, args.rounds, args.clock)
    lines = report(args, config, table, results, errors, latency, spread, images, train_seconds)
    lines += controller_report(studies, latency)
    elapsed = time.perf_counter() - started
    lines.insert(
        1,
        f"Machine: {os.cpu_count()} cores, torch {torch.__version__}, training on "
        f"{args.device}, timing on 1 CPU thread, clock `{table.settings['clock']}`; load "
        f"average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after (1-minute). "
        f"Run time {elapsed:.0f} s.\n",
    )
    text = "\n".join(lines)
    print(text)
    if args.output:
        write_results(Path(args.output), text, title="Benchmark: InstaNAS vs MobileNetV2")
    return 0


def report(
    args: argparse.Namespace,
    config: InstaNASConfig,
    table: OptionLatencyTable,
    results: dict[Key, InstaNASResult],
    errors: dict[Key, float],
    latency: dict[Key, float],
    spread: dict[Key, float],
    images: torch.Tensor,
    train_seconds: dict[str, list[float]],
) -> list[str]:
    command = "python benchmarks/instanas.py " + shlex.join(sys.argv[1:])
    reference = "MobileNetV2 1.0x"
    seeds = sorted({seed for _, seed in errors})
    names = list(dict.fromkeys(name for name, _ in errors))
    lines = [f"Command: `OMP_NUM_THREADS=1 {command.strip()}`\n"]
    lines.append(
        f"Data: {describe_data(args)}; seeds {', '.join(map(str, seeds))}; stem stride "
        f"{args.stem_stride}; {config.total_epochs} epochs for every network (InstaNAS: "
        f"{config.pretrain_epochs} pre-train, {config.search_epochs} search, "
        f"{config.finetune_epochs} fine-tune), lr {config.lr}, batch {config.batch_size}. "
        f"InstaNAS meta-graph width {config.width_mult}, pos_w {config.pos_w}, neg_w "
        f"{config.neg_w}, upper bound from {config.upper_start} L_all to U_T, controller lr "
        f"{config.controller_lr}; mean training times: "
        + ", ".join(f"{name} {statistics.mean(s):.0f} s" for name, s in train_seconds.items())
        + ".\n"
    )
    factors = table.settings.get("calibration", {})
    lines.append(
        f"Option latency table (measured first, on the CPU, {args.table_rounds} rounds, clock "
        f"`{table.settings['clock']}`): L_min {1e3 * table.reference('min'):.2f} ms, L_mbv2 "
        f"{1e3 * table.reference('mbv2'):.2f} ms, L_all {1e3 * table.reference('all'):.2f} ms, "
        f"fixed parts {1e3 * table.fixed_seconds:.2f} ms; calibration factors "
        + ", ".join(f"{k} {v:.2f}" for k, v in factors.items())
        + ".\n"
    )
    lines.append(
        f"Latency: mean CPU seconds per image over {len(images)} validation images run one at "
        f"a time, median of {args.rounds} interleaved rounds over all networks of all seeds; "
        "spread = (max - min) / median of the rounds. Each network is compared with the "
        f"{reference} of its own seed.\n"
    )
    lines.append(
        "| network | seed | val. error | error - MBV2 1.0x (points) | ms / image | latency vs "
        "MBV2 1.0x | spread of rounds |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    diffs: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    for name in names:
        for seed in seeds:
            key, base = (name, seed), (reference, seed)
            diff = ratio = ""
            if base in errors:
                diffs[name].append(100 * (errors[key] - errors[base]))
                ratios[name].append(100 * (latency[key] / latency[base] - 1))
                diff, ratio = f"{diffs[name][-1]:+.2f}", f"{ratios[name][-1]:+.1f}%"
            lines.append(
                f"| {name} | {seed} | {100 * errors[key]:.2f}% | {diff} | "
                f"{1e3 * latency[key]:.3f} | {ratio} | {100 * spread[key]:.1f}% |"
            )
    lines.append("")
    if len(seeds) > 1:
        lines.append(f"Mean over the {len(seeds)} seeds:\n")
        lines.append(
            "| network | val. error | error - MBV2 1.0x (points) | ms / image | latency vs MBV2 "
            "1.0x |"
        )
        lines.append("|---|---|---|---|---|")
        for name in names:
            error = statistics.mean(errors[(name, s)] for s in seeds)
            ms = statistics.mean(latency[(name, s)] for s in seeds)
            diff = f"{statistics.mean(diffs[name]):+.2f}" if diffs[name] else ""
            ratio = f"{statistics.mean(ratios[name]):+.1f}%" if ratios[name] else ""
            lines.append(f"| {name} | {100 * error:.2f}% | {diff} | {1e3 * ms:.3f} | {ratio} |")
        lines.append("")
    for key, result in results.items():
        counts = result.policy.counts
        share = ", ".join(f"{100 * c / sum(counts):.0f}%" for c in counts[:5])
        with torch.no_grad():
            predicted = float(table.predict(result.network.policy(images)).mean())
        lines.append(
            f"- {key[0]}, seed {key[1]}: distinct children on the validation set: "
            f"{len(result.policy.children)} (largest shares {share}); mean table latency of "
            f"their options {1e3 * result.table_latency:.2f} ms; on the timed images the table "
            f"predicts {1e3 * predicted:.2f} ms per image (options + fixed parts, no controller) "
            f"against {1e3 * latency[key]:.2f} ms measured with the controller."
        )
    if all(diffs[name] for name in results_names(results)):
        met = [
            name
            for name in results_names(results)
            if statistics.mean(diffs[name]) <= 0.5 and statistics.mean(ratios[name]) <= -30.0
        ]
        lines.append(
            "\nTarget (error within 0.5 points of MobileNetV2 1.0x and latency at least 30% "
            f"lower, {'mean over the seeds' if len(seeds) > 1 else 'one seed'}): "
            f"{'met by ' + ', '.join(met) if met else 'not met'}."
        )
    return lines


@dataclass(frozen=True)
class ControllerStudy:
    """What one InstaNAS run's controller learned, on its validation images."""

    distinct: int  # children the greedy policy uses on the validation images
    coverage: int  # most used children that serve 90% of them
    children: list[ChildEvaluation]  # the most used, each run alone on every image
    error: float  # InstaNAS's validation error
    table_latency: float  # InstaNAS's mean table latency per image (no controller)
    best_child: ChildEvaluation  # lowest error within InstaNAS's table latency (else fastest)
    fastest_at_error: ChildEvaluation | None  # fastest child with InstaNAS's error or lower
    per_class: list[tuple[str, int, float, float]]  # class, images, error, mean table seconds

    @property
    def beats_children(self) -> bool:
        """No child is as good on both counts, and one count is strictly better."""
        dominated = any(
            c.error <= self.error and c.table_latency <= self.table_latency for c in self.children
        )
        faster = self.fastest_at_error is None or (
            self.table_latency < self.fastest_at_error.table_latency
        )
        return not dominated and (self.error < self.best_child.error or faster)


@torch.no_grad()
def study_controller(
    result: InstaNASResult, data: TensorData, table: OptionLatencyTable, max_children: int
) -> ControllerStudy:
    network = result.network.eval()
    children = evaluate_children(network, data.val_x, data.val_y, table, max_children=max_children)
    policy = torch.cat([network.policy(x) for x in data.val_x.split(512)])
    per_image = table.predict(policy)
    wrong = torch.cat([network(x).argmax(dim=1) for x in data.val_x.split(512)]) != data.val_y
    # Counts, not float32 means: equal errors must compare equal to the children's.
    error, table_latency = int(wrong.sum()) / len(wrong), float(per_image.mean())
    within = [c for c in children if c.table_latency <= table_latency]
    best = (
        min(within, key=lambda c: (c.error, c.table_latency))
        if within
        else min(children, key=lambda c: c.table_latency)
    )
    as_good = [c for c in children if c.error <= error]
    names = class_names(data)
    per_class = [
        (
            names[k],
            int(mask.sum()),
            int(wrong[mask].sum()) / int(mask.sum()),
            float(per_image[mask].mean()),
        )
        for k in range(data.num_classes)
        if (mask := data.val_y == k).any()
    ]
    return ControllerStudy(
        distinct=len(result.policy.children),
        coverage=result.policy.coverage(0.9),
        children=children,
        error=error,
        table_latency=table_latency,
        best_child=best,
        fastest_at_error=min(as_good, key=lambda c: c.table_latency) if as_good else None,
        per_class=per_class,
    )


def class_names(data: TensorData) -> list[str]:
    if data.name.startswith("fashion_mnist"):
        return list(torchvision.datasets.FashionMNIST.classes)
    return [str(k) for k in range(data.num_classes)]


def controller_report(studies: dict[Key, ControllerStudy], latency: dict[Key, float]) -> list[str]:
    """Children used, InstaNAS against its own best single child, and choices per class."""
    if not studies:
        return []
    lines = [
        "\nWhat the controller learned, on each seed's validation images. Every child the "
        "greedy controller picks (the most used, up to `--max-children`) is also run alone, "
        "as a static network, on all of them; InstaNAS and the children are compared on the "
        "option table's latency (fixed parts included, InstaNAS without its controller), and "
        "InstaNAS (with its controller) and its best single child are also measured in the "
        "same rounds as everything else. Best single child: the lowest error among the "
        "children within InstaNAS's table latency (or the fastest child when none is).\n",
        "| network | seed | children used | children for 90% | error | table ms | best child "
        "error | best child table ms | fastest child at its error, table ms | measured ms: "
        "InstaNAS / best child | beats its children |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, study in studies.items():
        best, fastest = study.best_child, study.fastest_at_error
        child_key = (f"best single child of {key[0]}", key[1])
        lines.append(
            f"| {key[0]} | {key[1]} | {study.distinct} | {study.coverage} | "
            f"{100 * study.error:.2f}% | {1e3 * study.table_latency:.3f} | "
            f"{100 * best.error:.2f}% | {1e3 * best.table_latency:.3f} | "
            f"{'none' if fastest is None else f'{1e3 * fastest.table_latency:.3f}'} | "
            f"{1e3 * latency[key]:.3f} / {1e3 * latency[child_key]:.3f} | "
            f"{'yes' if study.beats_children else 'no'} |"
        )
    for name in dict.fromkeys(name for name, _ in studies):
        runs = [study for (n, _), study in studies.items() if n == name]
        lines.append(
            f"\nPer class, {name} (mean over {len(runs)} seed(s)): error and the mean table "
            "latency of the children the controller picks for the class's images.\n"
        )
        lines.append("| class | images | error | table ms |")
        lines.append("|---|---|---|---|")
        for index, (label, *_rest) in enumerate(runs[0].per_class):
            rows = [run.per_class[index] for run in runs]
            lines.append(
                f"| {label} | {sum(r[1] for r in rows)} | "
                f"{100 * statistics.mean(r[2] for r in rows):.1f}% | "
                f"{1e3 * statistics.mean(r[3] for r in rows):.3f} |"
            )
    return lines


def results_names(results: dict[Key, InstaNASResult]) -> list[str]:
    return list(dict.fromkeys(name for name, _ in results))


if __name__ == "__main__":
    raise SystemExit(main())
