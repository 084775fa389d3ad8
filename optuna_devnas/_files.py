"""Files that are whole or absent: a write that fails leaves the previous content as it was.

Latency tables are measured once on a device and used everywhere; a full disk or a killed
process must not leave half a table behind, so they are written to a temporary file in the
same folder and renamed over the old one (a rename within a folder is atomic on POSIX).
"""

from __future__ import annotations

import os
from pathlib import Path
import tempfile


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8) through a temporary file renamed over it."""
    path = Path(path)
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o666 & ~_umask())  # as a new file would get
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
