"""Fail-fast HTTP settings for the tracker's MLflow calls, and no run URLs on standard output.

MLflow's REST client retries a failed request up to 7 times with exponential backoff and waits
120 s for an answer, so one call to a dead tracking server blocks for minutes. The tracker must
never hold up a study that long: it would rather fail at once, warn, and catch up later. MLflow
reads these settings from environment variables on every request and offers no per-client
override, so :func:`fail_fast` sets the variables while tracker calls run (process-wide, counted
across threads) and restores them when the last one ends. Variables the user has set are left as
they are: an explicit setting wins. The same block sets
``MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT``: against a tracking server MLflow otherwise prints
two "View run ... at" lines each time a run ends, one pair per trial in a search's output.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import os
import threading

TIMEOUT_VARIABLE = "MLFLOW_HTTP_REQUEST_TIMEOUT"
MAX_RETRIES_VARIABLE = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
BACKOFF_VARIABLE = "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"
QUIET_VARIABLE = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"  # two "View run ... at" lines per run

_lock = threading.Lock()
_depth = 0
_set_by_us: list[str] = []


@contextlib.contextmanager
def fail_fast(*, timeout: int, max_retries: int) -> Iterator[None]:
    """Within the block, MLflow HTTP requests time out after ``timeout`` seconds and retry at
    most ``max_retries`` times, one second apart, and MLflow prints no run URLs to standard
    output (unless the user set those variables).

    Nested and concurrent blocks share the settings of the outermost one.
    """
    global _depth
    with _lock:
        if _depth == 0:
            wanted = {
                TIMEOUT_VARIABLE: str(timeout),
                MAX_RETRIES_VARIABLE: str(max_retries),
                BACKOFF_VARIABLE: "1",
                QUIET_VARIABLE: "true",
            }
            for name, value in wanted.items():
                if name not in os.environ:
                    os.environ[name] = value
                    _set_by_us.append(name)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for name in _set_by_us:
                    os.environ.pop(name, None)
                _set_by_us.clear()
