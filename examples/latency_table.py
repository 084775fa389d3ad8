"""Profile a latency table for DPP-Net's cell space on this CPU, then predict and check it.

Builds a ``LatencyTable`` (every layer choice at every shape of the space's networks, timed on
this machine), saves and reloads it as JSON, predicts the latency of a few random architectures
with it, and measures the same architectures with the ``Latency`` objective for comparison.
Finally it shows the table as a cheap objective for ``DPPSampler``: a function of trial params.

    python examples/latency_table.py [--max-layers 4] [--input-shape 1,8,8] [--architectures 6]
"""

from __future__ import annotations

import argparse
from pathlib import Path
import random
import tempfile

from optuna_devnas import CellSpace
from optuna_devnas.objectives import Latency, LatencyTable
from optuna_devnas.spaces import choices_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-layers", type=int, default=4)
    parser.add_argument("--input-shape", default="1,8,8", help="C,H,W (default: digits)")
    parser.add_argument("--architectures", type=int, default=6)
    parser.add_argument("--min-run-time", type=float, default=0.005, help="per table entry")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calibration", type=int, default=12)
    parser.add_argument("--output", help="where to save the table (default: a temporary file)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    space = CellSpace(max_layers=args.max_layers)
    input_shape = tuple(int(s) for s in args.input_shape.split(","))
    table = LatencyTable.profile(
        space,
        input_shape=input_shape,
        min_run_time=args.min_run_time,
        rounds=args.rounds,
        calibration=args.calibration,
    )
    print(
        f"Profiled {len(table.entries)} entries in {table.settings['profile_seconds']:.1f} s on "
        f"{table.device['cpu_model']}: overhead {1e3 * table.overhead:.3f} ms, "
        f"scale {table.scale:.2f}"
    )

    # Save it on the device, load it anywhere: loading checks it fits the space and input.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(args.output or Path(folder) / "table.json")
        table.save(path)
        table = LatencyTable.load(path, space=space, input_shape=input_shape)
        print(f"Saved and reloaded {path.name} ({path.stat().st_size} bytes)")

    rng = random.Random(args.seed)
    latency = Latency(input_shape=input_shape, repeats=3)
    print(f"{'cell':<60} {'predicted_ms':>12} {'measured_ms':>12} {'error':>7}")
    for _ in range(args.architectures):
        n_layers = rng.randint(1, space.max_layers)
        arch = space.architecture([rng.choice(choices_at(i)) for i in range(n_layers)])
        predicted, measured = table.predict(arch), latency(arch)
        error = 100 * (predicted / measured - 1)
        print(f"{arch!s:<60} {1e3 * predicted:12.3f} {1e3 * measured:12.3f} {error:+6.1f}%")

    # The form DPPSampler's cheap_objectives take: a cached function of a trial's params.
    predict_params = table.for_space(space)
    params = {"cell.n_layers": 2, "cell.layer_0": "conv3x3", "cell.layer_1": "bn_relu"}
    print(f"for_space({params}) = {1e3 * predict_params(params):.3f} ms")


if __name__ == "__main__":
    main()
