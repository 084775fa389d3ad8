"""Where torch runs: the device, with one clear error for a bad one, and the thread count.

Training, latency, memory and InstaNAS all take a ``device`` argument; a user who types a
device the machine lacks gets the same one-line message from each.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib

import torch


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)``, with a clear error for unknown or unavailable devices."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"Got device={device!r}, but expected e.g. 'cpu' or 'cuda'.") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Got device={device!r}, but CUDA is not available on this machine.")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"Got device={device!r}, but expected 'cpu' or 'cuda'.")
    return resolved


@contextlib.contextmanager
def intra_op_threads(threads: int) -> Iterator[None]:
    """Use ``threads`` intra-op threads inside the block, then restore the setting.

    On a CPU shared with other processes, OpenMP threads that spin-wait for busy cores slow
    small operations down many times over (training tenfold, a tiny convolution 30x, a GP
    likelihood several times), so the package's loops pin the count they need.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
