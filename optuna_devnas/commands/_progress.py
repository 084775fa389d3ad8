"""Progress of a search on standard output: one aligned line per trial, planning on its own line.

Every line starts with the same columns: trials ended out of the budget, seconds since the
search started, the trial number and its ``DPPSampler`` stage. A trial's line follows with its
values in readable numbers (``62,170``, ``0.0317``), the seconds it took from the start of its
objective (planning is not charged to it) and its cell. Planning that takes a while gets lines
of its own: one when it has gone on for :data:`SLOW_PLANNING_SECONDS`, one with its time when
it ends, so a search is never silent for long.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
import math
import sys
import threading
import time
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_devnas.commands._attrs import FAILURE_ATTR
from optuna_devnas.commands._budget import BudgetState
from optuna_devnas.samplers import STAGE_KEY
from optuna_devnas.spaces import ARCHITECTURE_ATTR

SLOW_PLANNING_SECONDS = 2.0
"""Planning longer than this is announced while it runs."""

SHOWN_PLANNING_SECONDS = 1.0
"""Planning at least this long gets a line with its time."""


def readable(value: Any) -> str:
    """A number as a person reads it: thousands separated, 4 significant digits, no exponent."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer() or abs(value) >= 1000:
        return f"{round(value):,}"
    if abs(value) >= 1e-4:
        return f"{value:.4g}"
    return f"{value:.3e}"


@dataclass
class Planning:
    """What the sampler decided while a trial was planned (filled in by the caller)."""

    stage: Any = None


class Progress:
    """Prints a search's progress (see the module docstring); a callback of ``study.optimize``.

    Args:
        names:
            Names of the objective values.
        n_trials:
            The budget of the search.
        enabled:
            Print nothing when ``False``. Default ``True``.
        stream:
            Where to print. Default standard output.
    """

    def __init__(
        self,
        *,
        names: Sequence[str],
        n_trials: int,
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.names = list(names)
        self.n_trials = n_trials
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self.done = 0
        self._widths = [max(len(name), 10) for name in self.names]
        self._begin = time.perf_counter()
        self._starts: dict[int, float] = {}
        self._waiting = 0
        self._header_due = False
        self._lock = threading.Lock()

    def header(self) -> None:
        """Print the column names before the first line (none if no line follows)."""
        self._header_due = True

    def count(self, study: optuna.Study) -> None:
        """Take the count of ended trials from ``study``."""
        self.done = BudgetState.of(study.get_trials(deepcopy=False)).ended

    @contextmanager
    def planning(self, number: int) -> Iterator[Planning]:
        """Time the planning of trial ``number``, announcing it when it is slow."""
        plan = Planning()
        began = time.perf_counter()
        timer = threading.Timer(
            SLOW_PLANNING_SECONDS, lambda: self._line(number, "-", "planning...")
        )
        timer.daemon = True
        if self.enabled:
            timer.start()
        try:
            yield plan
        finally:
            timer.cancel()
        seconds = time.perf_counter() - began
        if seconds >= SHOWN_PLANNING_SECONDS:
            self._line(number, plan.stage, f"planned in {seconds:.1f} s")

    def started(self, number: int) -> None:
        """Trial ``number``'s objective starts now: its time counts from here."""
        self._starts[number] = time.perf_counter()

    def lost(self, number: int) -> None:
        """Trial ``number`` was failed by another worker while this one still ran it."""
        self._line(number, "-", "failed by another worker (no heartbeat within the grace period)")

    def waiting(self, running: int) -> None:
        """This worker waits for ``running`` trials of other workers (said once per count)."""
        if running != self._waiting:
            self._waiting = running
            self._line(None, "-", f"waiting for {running} trial(s) running in other workers")

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.count(study)
        started = self._starts.pop(trial.number, None)
        seconds = "" if started is None else f"{time.perf_counter() - started:.1f}"
        stage = trial.system_attrs.get(STAGE_KEY, "-")
        if trial.state == TrialState.COMPLETE and trial.values is not None:
            values = "".join(f"  {readable(v):>{w}}" for v, w in zip(trial.values, self._widths))
            arch = trial.user_attrs.get(ARCHITECTURE_ATTR)
            cell = "-".join(arch["layers"]) if isinstance(arch, dict) else ""
            self._line(trial.number, stage, f"{values[2:]}  {seconds:>6}  {cell}")
        else:
            reason = trial.user_attrs.get(FAILURE_ATTR, "")
            text = f"{trial.state.name} {reason}".strip()
            self._line(trial.number, stage, text[:160])

    def _line(self, number: int | None, stage: Any, text: str) -> None:
        elapsed = time.perf_counter() - self._begin
        done = f"{self.done}/{self.n_trials}"
        shown = "" if number is None else number
        stage = "-" if stage is None else stage
        self._print(f"{done:>9} {elapsed:6.0f}s {shown:>6} {stage:>6}  {text}")

    def _print(self, line: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._header_due:
                self._header_due = False
                columns = "".join(f"  {n:>{w}}" for n, w in zip(self.names, self._widths))
                start = f"{'done':>9} {'time':>7} {'trial':>6} {'stage':>6}"
                print(f"{start}{columns}  {'secs':>6}  cell", file=self.stream)
            print(line.rstrip(), file=self.stream, flush=True)
