"""Four ``devnas worker`` processes on PostgreSQL, one killed with SIGKILL mid-trial."""

from __future__ import annotations

from collections import Counter
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
TrialState = optuna.trial.TrialState


def _postgres_available() -> bool:
    try:
        optuna.storages.RDBStorage(POSTGRES)
    except Exception:
        return False
    return True


def _devnas(*args: str) -> list[str]:
    return [sys.executable, "-m", "optuna_devnas.cli", *args]


@pytest.mark.slow
@pytest.mark.skipif(not _postgres_available(), reason="PostgreSQL at 127.0.0.1:5432 is needed")
def test_killed_worker_trial_is_retried_and_nothing_is_trained_twice(tmp_path: Path) -> None:
    study_name = f"devnas-kill-{uuid.uuid4().hex[:8]}"
    n_trials = 14
    config = {
        "study": study_name,
        "storage": POSTGRES,
        "trials": n_trials,
        "epochs": 2,
        "objectives": ["val_error", "params"],
        "max_layers": 3,
        "heartbeat_interval": 1,
        "grace_period": 4,
        "artifacts": str(tmp_path / "artifacts"),
    }
    (tmp_path / "search.json").write_text(json.dumps(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # `search` creates the study with its configuration (and runs one trial); workers join it.
    setup = subprocess.run(
        _devnas("search", "--config", "search.json", "--trials", "1", "--quiet"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert setup.returncode == 0, setup.stderr
    workers = [
        subprocess.Popen(
            _devnas(
                "worker", "--storage", POSTGRES, "--study", study_name, "--trials", str(n_trials)
            ),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    storage = optuna.storages.RDBStorage(POSTGRES)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
        deadline = time.time() + 240
        victim = workers[0]
        # Kill a worker once every worker is inside a trial.
        while time.time() < deadline:
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            # Training, not sampling: a trial gets its parameters (and heartbeat) once sampled.
            if sum(bool(t.params) for t in running) >= 4:
                break
            time.sleep(0.2)
        else:
            pytest.fail("workers never ran 4 trials at once")
        victim.send_signal(signal.SIGKILL)
        outputs = [worker.communicate(timeout=400)[0] for worker in workers[1:]]
        for worker, output in zip(workers[1:], outputs):
            assert worker.returncode == 0, output
            assert "Traceback" not in output
        trials = study.get_trials(deepcopy=False)
        states = Counter(t.state for t in trials)
        assert states[TrialState.COMPLETE] == n_trials  # the budget, exactly
        assert states[TrialState.RUNNING] == 0
        failed = [
            t
            for t in trials
            if t.state == TrialState.FAIL and not t.system_attrs.get("devnas:surplus")
        ]
        assert len(failed) == 1  # the killed worker's trial, failed by the heartbeat
        retries = [t for t in trials if t.system_attrs.get("failed_trial") == failed[0].number]
        assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
        assert retries[0].params == failed[0].params
        # No architecture trained twice to completion.
        complete = [
            json.dumps(t.params, sort_keys=True) for t in trials if t.state == TrialState.COMPLETE
        ]
        assert len(complete) == len(set(complete))
        pareto = subprocess.run(
            _devnas("pareto", "--storage", POSTGRES, "--study", study_name, "--csv"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert pareto.returncode == 0, pareto.stderr
        lines = pareto.stdout.strip().splitlines()
        assert lines[0] == "trial,val_error,params,architecture"
        assert len(lines) >= 2
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        optuna.delete_study(study_name=study_name, storage=storage)
