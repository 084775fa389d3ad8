"""Which torch device a part of the package runs on, with one clear error for a bad one.

Training, latency, memory and InstaNAS all take a ``device`` argument; a user who types a
device the machine lacks gets the same one-line message from each.
"""

from __future__ import annotations

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
