"""Workers killed at random points, on PostgreSQL and SQLite, round after round.

Each round creates a study of ``BUDGET`` trials (DPPSampler, real training on digits, latency
from a latency table) and starts ``WORKERS`` ``devnas worker`` processes, then kills workers with
SIGKILL at three kinds of points:

- while training: the worker of a running trial that has its parameters;
- while the sampler plans: the worker of a running trial that has none yet (``DPPSampler``
  fits its surrogate there at the start of a stage);
- during storage writes: every worker process kills itself, with a small probability, just
  before a database transaction commits (the write is lost) or just after (the process dies
  with it done).

Killed workers are replaced until the study is done. After each round: no architecture
completed twice, no trial left running once its worker had been dead for the grace period (and
none at all once the workers are gone), exactly ``BUDGET`` complete trials, every saved weight
file loads into its network, the latency table all workers read is unchanged, and a SQLite
database passes its integrity check. ``DEVNAS_FAULT_ROUNDS`` sets the rounds per database
(default 1); ``docs/distributed.md`` reports a longer run. Each worker's output is kept in the
round's folder (``worker-N.out``, ``worker-N.err``) for when a round fails.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import optuna
import pytest
import torch

from optuna_devnas.commands._attrs import SURPLUS_ATTR, WEIGHTS_ATTR, WORKER_ATTR
from optuna_devnas.commands._config import SearchConfig
from optuna_devnas.commands._job import SearchJob
from optuna_devnas.objectives import LatencyTable
from optuna_devnas.spaces import CellSpace

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
TrialState = optuna.trial.TrialState
ROUNDS = int(os.environ.get("DEVNAS_FAULT_ROUNDS", "1"))
BUDGET = 8
WORKERS = 3
MAX_SPAWNS = 7  # replacements per round; later ones no longer kill themselves
KILL_PER_COMMIT = 0.004
SPACE = CellSpace(max_layers=2, depths=(1, 1), growth_rates=(8, 16), stem_channels=8)
GRACE = 4
ROUND_SECONDS = 300

# A worker that may kill itself around a database commit (what SIGKILL during a write does).
WORKER = """
import os, random, signal, sys
import sqlalchemy.orm

chance = float(os.environ["DEVNAS_KILL_PER_COMMIT"])
draw = random.Random(os.getpid()).random
commit = sqlalchemy.orm.Session.commit


def commit_or_die(self):
    if draw() < chance:
        os.kill(os.getpid(), signal.SIGKILL)  # the transaction is written but not committed
    commit(self)
    if draw() < chance:
        os.kill(os.getpid(), signal.SIGKILL)  # committed, then gone


sqlalchemy.orm.Session.commit = commit_or_die
from optuna_devnas.cli import main

sys.exit(main(sys.argv[1:]))
"""


def _postgres_available() -> bool:
    try:
        optuna.storages.RDBStorage(POSTGRES)
    except Exception:
        return False
    return True


@dataclass
class Round:
    """One round's workers and the kills done to them."""

    folder: Path
    storage: str
    study: str
    workers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[int, Path] = field(default_factory=dict)  # pid -> its standard error
    died: dict[int, float] = field(default_factory=dict)  # pid -> time it was seen dead
    killed: set[int] = field(default_factory=set)  # by the test, not by themselves
    kills: Counter[str] = field(default_factory=Counter)
    spawned: int = 0

    def spawn(self, chance: float) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "DEVNAS_KILL_PER_COMMIT": str(chance)}
        argv = [sys.executable, str(self.folder / "worker.py"), "worker"]
        argv += ["--storage", self.storage, "--study", self.study]
        # Logs in files (a pipe nobody reads could fill up and block a worker).
        name = f"worker-{self.spawned}"
        with (
            open(self.folder / f"{name}.out", "w") as out,
            open(self.folder / f"{name}.err", "w") as err,
        ):
            process = subprocess.Popen(argv, cwd=self.folder, env=env, stdout=out, stderr=err)
        self.logs[process.pid] = self.folder / f"{name}.err"
        self.workers[process.pid] = process
        self.spawned += 1

    def kill(self, pid: int, kind: str) -> None:
        process = self.workers.get(pid)
        if process is not None and process.poll() is None:
            self.killed.add(pid)
            process.send_signal(signal.SIGKILL)
            process.wait()
            self.kills[kind] += 1

    def reap(self) -> None:
        """Note dead workers; count self-kills; fail on a worker that failed by itself."""
        now = time.time()
        for pid, process in self.workers.items():
            code = process.poll()
            if code is None or pid in self.died:
                continue
            err = self.logs[pid].read_text()
            if code == -signal.SIGKILL:
                self.died[pid] = now
                self.kills["write"] += pid not in self.killed
            else:
                assert code == 0, f"worker {pid} exited with {code}: {err}"
                assert "Traceback" not in err, err
                self.died[pid] = now

    def alive(self) -> list[int]:
        return [pid for pid, p in self.workers.items() if p.poll() is None]


def make_study(folder: Path, storage: str) -> tuple[str, Path]:
    table = LatencyTable.profile(
        SPACE, input_shape=(1, 1, 8, 8), min_run_time=0.001, rounds=1, calibration=2
    )
    table_path = folder / "table.json"
    table.save(table_path)
    study = f"faults-{uuid.uuid4().hex[:8]}"
    config = SearchConfig(
        study=study,
        storage=storage,
        trials=BUDGET,
        epochs=1,
        max_layers=SPACE.max_layers,
        depths=SPACE.to_dict()["depths"],
        growth_rates=SPACE.to_dict()["growth_rates"],
        stem_channels=SPACE.to_dict()["stem_channels"],
        k=2,
        latency_table=str(table_path),
        artifacts=str(folder / "artifacts"),
        heartbeat_interval=1,
        grace_period=GRACE,
        max_retry=10,
    )
    SearchJob(config).create_study()
    return study, table_path


def run_round(folder: Path, storage: str, seed: int) -> Round:
    (folder / "worker.py").write_text(WORKER)
    study_name, table_path = make_study(folder, storage)
    table_bytes = table_path.read_bytes()
    state = Round(folder, storage, study_name)
    for _ in range(WORKERS):
        state.spawn(KILL_PER_COMMIT)
    rng = random.Random(seed)
    # When to kill, as a share of the budget complete: planning at the start of the search or,
    # every other round, of stage 2 (6 one-layer cells done), where DPPSampler fits its GP.
    plan = {"training": rng.uniform(0, 0.6), "planning": 0.75 * (seed % 2)}
    reader = optuna.storages.RDBStorage(storage)
    study = optuna.load_study(study_name=study_name, storage=reader)
    deadline = time.time() + ROUND_SECONDS
    while True:
        assert time.time() < deadline, f"round did not end: {_summary(study)} {state.kills}"
        state.reap()
        trials = study.get_trials(deepcopy=False)
        _assert_no_trial_of_the_long_dead(trials, state)
        done = sum(t.state == TrialState.COMPLETE for t in trials)
        running = [t for t in trials if t.state == TrialState.RUNNING]
        alive = state.alive()
        if not alive and not running and done >= BUDGET:
            break
        for trial in running:
            kind = "training" if trial.params else "planning"
            if _pid(trial) in alive and kind in plan and done >= plan[kind] * BUDGET:
                del plan[kind]
                state.kill(_pid(trial), kind)  # type: ignore[arg-type]
        if done < BUDGET and len(alive) < WORKERS and state.spawned < WORKERS + MAX_SPAWNS:
            # The last replacements no longer kill themselves, so every round ends.
            chance = KILL_PER_COMMIT if state.spawned < WORKERS + MAX_SPAWNS - 2 else 0.0
            state.spawn(chance)
        elif not alive:
            state.spawn(0.0)  # someone must finish the study and fail the dead ones' trials
        time.sleep(0.1)
    _check_round(study, storage, folder, table_path, table_bytes)
    return state


def _pid(trial: optuna.trial.FrozenTrial) -> int | None:
    worker = trial.system_attrs.get(WORKER_ATTR)
    return int(worker.rsplit(":", 1)[1]) if worker else None


def _summary(study: optuna.Study) -> Counter[str]:
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


def _assert_no_trial_of_the_long_dead(
    trials: list[optuna.trial.FrozenTrial], state: Round
) -> None:
    """A trial whose worker died is failed once the grace period has passed (with a margin
    for the live workers to look: they do before each trial, and mid-trial they cannot)."""
    now = time.time()
    for trial in trials:
        pid = _pid(trial)
        if trial.state == TrialState.RUNNING and pid in state.died:
            assert now - state.died[pid] < GRACE + 30, f"trial {trial.number} of dead {pid}"


def _check_round(
    study: optuna.Study, storage: str, folder: Path, table_path: Path, table_bytes: bytes
) -> None:
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    assert states[TrialState.COMPLETE] == BUDGET, _summary(study)
    assert states[TrialState.RUNNING] == 0 and states[TrialState.WAITING] == 0
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    networks = [SPACE.from_params(t.params).canonical().layers for t in complete]
    assert len(set(networks)) == len(networks), sorted(networks)
    for trial in complete:
        meta = json.loads(trial.system_attrs[f"artifacts:{trial.user_attrs[WEIGHTS_ATTR]}"])
        weights = torch.load(
            folder / "artifacts" / meta["artifact_id"], weights_only=True, map_location="cpu"
        )
        model = SPACE.from_params(trial.params).build(num_classes=10, input_shape=(1, 8, 8))
        model.load_state_dict(weights)  # strict: every tensor there, of its shape
    assert table_path.read_bytes() == table_bytes
    LatencyTable.load(table_path, space=SPACE, input_shape=(1, 8, 8))
    if storage.startswith("sqlite"):
        with sqlite3.connect(storage.removeprefix("sqlite:///")) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    surplus = [t for t in trials if t.system_attrs.get(SURPLUS_ATTR)]
    assert all(not t.params for t in surplus)


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_killed_workers_lose_nothing_and_train_nothing_twice(
    tmp_path: Path, database: str
) -> None:
    if database == "postgresql" and not _postgres_available():
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is needed")
    totals: Counter[str] = Counter()
    for number in range(ROUNDS):
        folder = tmp_path / f"round-{number}"
        folder.mkdir()
        storage = f"sqlite:///{folder / 'db.sqlite3'}" if database == "sqlite" else POSTGRES
        state = run_round(folder, storage, seed=number)
        totals.update(state.kills)
        totals["rounds"] += 1
        print(f"{database} round {number}: {dict(state.kills)}, {state.spawned} workers started")
        if database == "postgresql":
            optuna.delete_study(study_name=state.study, storage=storage)
    print(f"{database}: {dict(totals)}")  # shown with pytest -s; reported in docs/distributed.md


SAVE_FOREVER = """
import sys
from optuna_devnas.objectives import LatencyTable
table = LatencyTable.load(sys.argv[1])
print("ready", flush=True)
while True:
    table.save(sys.argv[1])
"""


@pytest.mark.slow
def test_a_table_being_saved_when_killed_is_never_corrupted(tmp_path: Path) -> None:
    table = LatencyTable.profile(
        SPACE, input_shape=(1, 1, 8, 8), min_run_time=0.001, rounds=1, calibration=2
    )
    path = tmp_path / "table.json"
    table.save(path)
    rng = random.Random(0)
    for _ in range(5):
        saver = subprocess.Popen(
            [sys.executable, "-c", SAVE_FOREVER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert saver.stdout is not None and saver.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.0, 0.3))
        saver.send_signal(signal.SIGKILL)
        saver.wait()
        assert LatencyTable.load(path).entries == table.entries
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "table.json"]
    assert all(name.startswith(".table.json.") for name in leftovers)  # killed mid-write
