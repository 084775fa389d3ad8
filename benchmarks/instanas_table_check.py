"""How well InstaNAS's option latency table predicts children that run inside the network.

The table times every option alone; the reward ranks children by its sums. This script
measures, on this machine and at batch size 1 on one thread, whole children of a freshly built
meta-graph (``MetaGraph.forward_child``) next to two tables' predictions (options + fixed
parts): entries timed alone (``OptionLatencyTable.measure(calibrate=False)``) and entries
scaled per option to whole children (the default, ``calibrate=True``). Children: the reference
ones ("min", "mbv2", "all"), per option the child that runs it in every block (the children
the calibration is fitted on) and random children (not fitted on). Also torchvision's
MobileNetV2 on the same layout, the static baseline of ``benchmarks/instanas.py``.

    OMP_NUM_THREADS=1 python benchmarks/instanas_table_check.py
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import torch

from optuna_devnas.instanas import OptionLatencyTable
from optuna_devnas.instanas._baseline import mobilenet_v2_baseline
from optuna_devnas.instanas._latency_table import calibration_policies
from optuna_devnas.instanas._meta_graph import MetaGraph, policy_to_child
from optuna_devnas.instanas._options import OPTION_NAMES
from optuna_devnas.objectives import measure_latency


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width-mult", type=float, default=1.0)
    parser.add_argument("--stem-stride", type=int, default=2)
    parser.add_argument("--size", type=int, default=32, help="input side (3 channels)")
    parser.add_argument("--min-run-time", type=float, default=0.3)
    parser.add_argument("--random-children", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    shape = (3, args.size, args.size)
    graph = MetaGraph(
        num_classes=10, input_shape=shape, width_mult=args.width_mult, stem_stride=args.stem_stride
    ).eval()
    alone = OptionLatencyTable.measure(graph, rounds=3, calibrate=False)
    table = OptionLatencyTable.measure(graph, rounds=3)
    x = torch.randn(1, *shape)

    def timed(fn: Callable[[], object]) -> float:
        with torch.no_grad():
            return measure_latency(
                lambda _: fn(), x, threads=1, min_run_time=args.min_run_time, clock="thread"
            )

    policies = {name: graph.reference_policy(name) for name in ("min", "mbv2", "all")}
    # The children the calibration is fitted on: the cheapest, then each option everywhere.
    for option, policy in zip(OPTION_NAMES, calibration_policies(graph)[1:], strict=True):
        policies[f"{option} in every block"] = policy
    generator = torch.Generator().manual_seed(0)
    for i in range(args.random_children):
        random = torch.rand(1, graph.num_blocks, graph.num_options, generator=generator) < 0.3
        policies[f"random child {i}"] = graph.normalize(random)[0]
    rows = []
    for name, policy in policies.items():
        child = policy_to_child(policy)
        measured = timed(lambda child=child: graph.forward_child(x, child))  # type: ignore[misc]
        before = float(alone.predict(policy.unsqueeze(0))[0])
        after = float(table.predict(policy.unsqueeze(0))[0])
        rows.append((name, before, after, measured))
    baseline = mobilenet_v2_baseline(
        num_classes=10, input_shape=shape, width_mult=1.0, stem_stride=args.stem_stride
    ).eval()
    mbv2 = timed(lambda: baseline(x))
    print(
        f"Meta-graph width {args.width_mult}, input {args.size}x{args.size}, stem stride "
        f"{args.stem_stride}, batch 1, one thread, thread-CPU clock.\n"
    )
    print(
        "| child | options timed alone (ms) | calibrated (ms) | measured in the network (ms) "
        "| measured / alone | measured / calibrated |"
    )
    print("|---|---|---|---|---|---|")
    for name, before, after, measured in rows:
        print(
            f"| {name} | {1e3 * before:.2f} | {1e3 * after:.2f} | {1e3 * measured:.2f} | "
            f"{measured / before:.2f} | {measured / after:.2f} |"
        )
    scales = ", ".join(f"{k} {v:.2f}" for k, v in table.settings["calibration"].items())
    print(f"\nCalibration factors: {scales}.")
    print(f"\ntorchvision MobileNetV2 1.0x on the same layout: {1e3 * mbv2:.2f} ms measured.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
