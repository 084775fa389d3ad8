"""``devnas profile``: build a latency table on the device at hand and write it as JSON.

Run it once on the target device (a phone-class board, a server CPU, a GPU); the JSON then
predicts latency for searches anywhere (``LatencyTable.load``). It needs this package and torch,
and never ONNX, MLflow or BoTorch.

Profiling takes minutes, so the output is checked before anything is measured (a folder, a
device such as ``/dev/full``, a folder one cannot write to are refused at once), and if the
final write still fails the table is written to a file in the temporary folder, which the
error line names: the measurements are never lost.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any, TextIO

from optuna_devnas._errors import DevnasError

if TYPE_CHECKING:
    from optuna_devnas.objectives import LatencyTable


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"Got {text!r}, but expected integers separated by commas, e.g. 3,32,32."
        ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"Got {text!r}, but expected at least one integer.")
    return values


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="profile a latency table for a cell space on this device",
        description=(
            "Time every layer choice at every shape of a CellSpace's networks on this device, "
            "plus the fixed overhead and a few calibration networks, and write a latency "
            "table (JSON) that predicts any architecture's latency."
        ),
    )
    parser.add_argument("--output", "-o", required=True, help="JSON file to write")
    parser.add_argument(
        "--input-shape",
        type=_int_tuple,
        default=(3, 32, 32),
        help="input C,H,W or B,C,H,W (default 3,32,32; digits: 1,8,8)",
    )
    parser.add_argument("--num-classes", type=int, default=10, help="classes (default 10)")
    parser.add_argument("--max-layers", type=int, default=4, help="longest cell (default 4)")
    parser.add_argument("--depths", type=_int_tuple, default=(2, 2, 2), help="default 2,2,2")
    parser.add_argument(
        "--growth-rates", type=_int_tuple, default=(8, 16, 32), help="default 8,16,32"
    )
    parser.add_argument("--stem-channels", type=int, default=16, help="default 16")
    parser.add_argument("--bottleneck", type=int, default=4, help="default 4")
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument(
        "--min-run-time", type=float, default=0.005, help="seconds per timing (default 0.005)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--calibration", type=int, default=48, help="calibration networks (default 48)"
    )
    parser.add_argument(
        "--clock", choices=("auto", "wall", "thread"), default="auto", help="default auto"
    )
    parser.add_argument("--seed", type=int, default=0, help="calibration seed (default 0)")
    parser.add_argument(
        "--backend",
        default="torch",
        help="runtime to time: torch or onnxruntime (the onnx extra; default torch)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    parser.set_defaults(func=run)


class _Progress:
    """One status line on standard error, rewritten in place on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.start = time.perf_counter()
        self.last = -1.0
        self.interactive = stream.isatty()

    def __call__(self, done: int, total: int, label: str) -> None:
        now = time.perf_counter() - self.start
        # A terminal gets every item; a log gets a line every few seconds and the last one.
        if not self.interactive and done != total and now - self.last < 5.0:
            return
        self.last = now
        line = f"[{done:4d}/{total}] {now:6.1f}s {label}"
        end = "\r" if self.interactive and done != total else "\n"
        self.stream.write(f"{line:<79}{end}")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from optuna_devnas.objectives import LatencyTable
    from optuna_devnas.spaces import CellSpace

    space = CellSpace(
        max_layers=args.max_layers,
        depths=args.depths,
        growth_rates=args.growth_rates,
        stem_channels=args.stem_channels,
        bottleneck=args.bottleneck,
    )
    output = Path(args.output)
    check_writable(output)
    table = LatencyTable.profile(
        space,
        input_shape=args.input_shape,
        num_classes=args.num_classes,
        device=args.device,
        threads=args.threads,
        min_run_time=args.min_run_time,
        rounds=args.rounds,
        calibration=args.calibration,
        clock=args.clock,
        seed=args.seed,
        progress=None if args.quiet else _Progress(sys.stderr),
        backend=args.backend,
    )
    try:
        table.save(output)
    except OSError as error:
        kept = keep_measurements(table, output)
        raise DevnasError(
            f"Could not write {str(output)!r} ({error.strerror or error}); the table was "
            f"written to {kept} instead."
        ) from None
    device = table.device
    print(
        f"Wrote {output}: {len(table.entries)} layer entries for {space!r} on input "
        f"{table.batch_shape}, measured on {device['cpu_model']} ({device['type']}, "
        f"{device['threads']} thread(s), torch {device['torch_version']}) in "
        f"{table.settings['profile_seconds']:.1f} s; overhead {1e3 * table.overhead:.3f} ms, "
        f"scale {table.scale:.3f}."
    )
    return 0


def check_writable(output: Path) -> None:
    """Raise unless a table can be written to ``output`` (checked by writing a scratch file)."""
    if output.exists() and not output.is_file():
        raise DevnasError(
            f"Got --output {str(output)!r}, which is not a regular file (a folder or a device); "
            "expected the path of a JSON file."
        )
    if not output.parent.is_dir():
        raise FileNotFoundError(f"Got --output {str(output)!r}, but its folder does not exist.")
    try:
        handle, scratch = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
        os.close(handle)
        os.unlink(scratch)
    except OSError as error:
        raise DevnasError(
            f"Got --output {str(output)!r}, but its folder cannot be written "
            f"({error.strerror or error})."
        ) from None


def keep_measurements(table: LatencyTable, output: Path) -> str:
    """Write ``table`` to a new file in the temporary folder; its path."""
    handle, path = tempfile.mkstemp(prefix=f"devnas-profile-{output.stem}-", suffix=".json")
    os.close(handle)
    table.save(path)
    return path
