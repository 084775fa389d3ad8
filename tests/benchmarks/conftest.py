"""Put the repository root on ``sys.path``: ``benchmarks`` is a script folder, not installed."""

from __future__ import annotations

from pathlib import Path
import sys

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
