"""InstaNAS against static MobileNetV2 baselines on digits resized to 32x32, on this machine.

Trains, with the same number of epochs, learning rate and batch size:

- InstaNAS: a MobileNetV2 meta-graph (17 blocks x 5 options) with its controller, through the
  three phases (pre-training, search, fine-tuning), reward with the shrinking latency bound,
  option latency table measured here first;
- torchvision's MobileNetV2 at several width multipliers on the same stage layout.

Then measures every network's mean latency per image, at batch size 1 on one CPU thread, on the
same validation images, in interleaved rounds (each network keeps its median), with the
thread-CPU-time clock, so other processes on the machine disturb the comparison less. The
instance-aware network pays for its controller and runs each image's own child.

Reported per network: validation error, mean latency per image, both relative to MobileNetV2
1.0x; for InstaNAS also the table's prediction, the number of children used and how often.
With ``--output`` the results go into a markdown file between ``<!-- results:start -->`` and
``<!-- results:end -->`` (the rest of the file is kept). CIFAR-10 runs with
``--data cifar10 --data-root <folder>`` (a GPU is advisable: ``--device cuda``).

    OMP_NUM_THREADS=1 python benchmarks/instanas.py --output docs/benchmarks-instanas.md
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import os
from pathlib import Path
import shlex
import statistics
import sys
import time

import torch
from torch import nn

from optuna_devnas.data import TensorData, load_data
from optuna_devnas.instanas import (
    InstaNAS,
    InstaNASConfig,
    InstaNASResult,
    measure_per_image_latency,
    train_baseline,
)

START, END = "<!-- results:start -->", "<!-- results:end -->"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="digits32", help="digits32, cifar10 or cifar100")
    parser.add_argument("--data-root", help="folder of CIFAR (never downloaded)")
    parser.add_argument("--widths", default="0.5,0.75,1.0", help="MobileNetV2 width multipliers")
    parser.add_argument("--width-mult", type=float, default=0.5, help="InstaNAS meta-graph width")
    parser.add_argument("--stem-stride", type=int, default=2, help="stem stride of all networks")
    parser.add_argument("--epochs", default="2,4,2", help="InstaNAS pre-train,search,fine-tune")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--controller-lr", type=float, default=0.01)
    parser.add_argument("--pos-w", type=float, default=30.0)
    parser.add_argument("--neg-w", type=float, default=0.0)
    parser.add_argument("--upper-start", type=float, default=0.7)
    parser.add_argument(
        "--upper-ends", default="0.5,1.0", help="one InstaNAS run per final bound (x L_mbv2)"
    )
    parser.add_argument("--latency-images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved latency rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="training device (latency: CPU)")
    parser.add_argument("--output", help="markdown file to write the results into")
    return parser.parse_args(argv)


def load(args: argparse.Namespace) -> TensorData:
    return load_data(args.data, root=args.data_root, seed=args.seed)


def measure_all(
    networks: dict[str, nn.Module], images: torch.Tensor, rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Per network, the median over interleaved rounds of its mean CPU seconds per image, and
    the spread of the rounds ((max - min) / median), a measure of this machine's noise."""
    times: dict[str, list[float]] = {name: [] for name in networks}
    for round_index in range(rounds):
        names = list(networks) if round_index % 2 == 0 else list(networks)[::-1]
        for name in names:
            times[name].append(measure_per_image_latency(networks[name].eval(), images))
    medians = {name: statistics.median(values) for name, values in times.items()}
    spread = {name: (max(v) - min(v)) / medians[name] for name, v in times.items()}
    return medians, spread


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    torch.set_num_threads(1)
    data = load(args)
    pretrain, search, finetune = (int(e) for e in args.epochs.split(","))
    configs = [
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
            upper_start=args.upper_start,
            upper_end=float(upper_end),
            controller_resolution=8 if args.data.startswith("digits") else 16,
            controller_width=8,
            latency_images=args.latency_images,
            measure_every_epoch=False,
            seed=args.seed,
            device=args.device,
        )
        for upper_end in args.upper_ends.split(",")
    ]
    config = configs[0]
    results: dict[str, InstaNASResult] = {}
    train_seconds: dict[str, float] = {}
    table = None  # measured by the first run, shared by the others
    for variant in configs:
        name = f"InstaNAS (U_T = {variant.upper_end} L_mbv2)"
        t0 = time.perf_counter()
        results[name] = InstaNAS(config=variant, latency_table=table).fit(data)
        table = results[name].table
        train_seconds[name] = time.perf_counter() - t0
        print(
            f"{name} trained in {train_seconds[name]:.0f} s: error {results[name].val_error:.4f}",
            flush=True,
        )
        for record in results[name].history:
            print("  ", {k: round(v, 5) if isinstance(v, float) else v for k, v in record.items()})
    baselines = {}
    for width in (float(w) for w in args.widths.split(",")):
        t0 = time.perf_counter()
        baselines[width] = train_baseline(
            data,
            width_mult=width,
            epochs=config.total_epochs,
            lr=args.lr,
            weight_decay=config.weight_decay,
            batch_size=config.batch_size,
            stem_stride=args.stem_stride,
            seed=args.seed,
            device=args.device,
        )
        print(
            f"MobileNetV2 {width}x trained in {time.perf_counter() - t0:.0f} s: "
            f"error {baselines[width].val_error:.4f}",
            flush=True,
        )

    images = data.val_x[: args.latency_images]
    networks: dict[str, nn.Module] = {name: r.network.cpu() for name, r in results.items()}
    networks.update({f"MobileNetV2 {w}x": b.model.cpu() for w, b in baselines.items()})
    latency, spread = measure_all(networks, images, args.rounds)
    errors = {name: r.val_error for name, r in results.items()}
    errors.update({f"MobileNetV2 {w}x": b.val_error for w, b in baselines.items()})
    lines = report(args, config, results, errors, latency, spread, images, train_seconds)
    elapsed = time.perf_counter() - started
    lines.insert(
        1,
        f"Machine: {os.cpu_count()} cores, torch {torch.__version__}, 1 thread, clock `thread`; "
        f"load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after (1-minute; "
        f"other jobs on the same cores). Run time {elapsed:.0f} s.\n",
    )
    text = "\n".join(lines)
    print(text)
    if args.output:
        write_results(Path(args.output), text)
    return 0


def report(
    args: argparse.Namespace,
    config: InstaNASConfig,
    results: dict[str, InstaNASResult],
    errors: dict[str, float],
    latency: dict[str, float],
    spread: dict[str, float],
    images: torch.Tensor,
    train_seconds: dict[str, float],
) -> list[str]:
    command = "python benchmarks/instanas.py " + shlex.join(sys.argv[1:])
    reference = "MobileNetV2 1.0x"
    lines = [f"Command: `OMP_NUM_THREADS=1 {command.strip()}`\n"]
    table = next(iter(results.values())).table
    lines.append(
        f"Data: {args.data} (validation split: 360 of scikit-learn's 1,797 digits for "
        f"`digits32`); stem stride {args.stem_stride}; {config.total_epochs} epochs for every "
        f"network (InstaNAS: {config.pretrain_epochs} pre-train, {config.search_epochs} search, "
        f"{config.finetune_epochs} fine-tune), lr {config.lr}, batch {config.batch_size}. "
        f"InstaNAS meta-graph width {config.width_mult}, pos_w {config.pos_w}, neg_w "
        f"{config.neg_w}, upper bound from {config.upper_start} L_all to U_T, controller lr "
        f"{config.controller_lr}; training times: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in train_seconds.items())
        + ".\n"
    )
    lines.append(
        f"Option latency table (measured first, thread clock): L_min "
        f"{1e3 * table.reference('min'):.2f} ms, L_mbv2 {1e3 * table.reference('mbv2'):.2f} ms, "
        f"L_all {1e3 * table.reference('all'):.2f} ms, fixed parts "
        f"{1e3 * table.fixed_seconds:.2f} ms.\n"
    )
    lines.append(
        f"Latency: mean CPU seconds per image over {len(images)} validation images run one at "
        f"a time, median of {args.rounds} interleaved rounds; spread = (max - min) / median "
        "of the rounds.\n"
    )
    lines.append(
        "| network | val. error | error - MBV2 1.0x (points) | ms / image | latency vs MBV2 1.0x "
        "| spread of rounds |"
    )
    lines.append("|---|---|---|---|---|---|")
    base_error = errors.get(reference)
    base_latency = latency.get(reference)
    for name in errors:
        diff = "" if base_error is None else f"{100 * (errors[name] - base_error):+.2f}"
        ratio = "" if base_latency is None else f"{100 * (latency[name] / base_latency - 1):+.1f}%"
        lines.append(
            f"| {name} | {100 * errors[name]:.2f}% | {diff} | {1e3 * latency[name]:.3f} | "
            f"{ratio} | {100 * spread[name]:.1f}% |"
        )
    lines.append("")
    for name, result in results.items():
        counts = result.policy.counts
        share = ", ".join(f"{100 * c / sum(counts):.0f}%" for c in counts[:5])
        with torch.no_grad():
            predicted = float(result.table.predict(result.network.policy(images)).mean())
        lines.append(
            f"- {name}: distinct children on the validation set: {len(result.policy.children)} "
            f"(largest shares {share}); mean table latency of their options "
            f"{1e3 * result.table_latency:.2f} ms; on the timed images the table predicts "
            f"{1e3 * predicted:.2f} ms per image (options + fixed parts, no controller) against "
            f"{1e3 * latency[name]:.2f} ms measured with the controller."
        )
    if base_error is not None and base_latency is not None:
        met = [
            name
            for name in results
            if errors[name] - base_error <= 0.005 and latency[name] <= 0.7 * base_latency
        ]
        lines.append(
            "\nTarget (error within 0.5 points of MobileNetV2 1.0x and latency at least 30% "
            f"lower): {'met by ' + ', '.join(met) if met else 'not met'}."
        )
    return lines


def write_results(path: Path, text: str) -> None:
    block = f"{START}\n{text}\n{END}"
    if path.exists():
        current = path.read_text(encoding="utf-8")
        if START in current and END in current:
            head, rest = current.split(START, 1)
            _, tail = rest.split(END, 1)
            path.write_text(head + block + tail, encoding="utf-8")
            return
        path.write_text(current.rstrip() + "\n\n" + block + "\n", encoding="utf-8")
        return
    path.write_text("# Benchmark: InstaNAS vs MobileNetV2\n\n" + block + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
