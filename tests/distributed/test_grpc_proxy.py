"""DPPSampler through Optuna's gRPC storage proxy in front of PostgreSQL, with 4 workers."""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import socket
import subprocess
import sys
import uuid

import optuna
from optuna.trial import TrialState
import pytest

from optuna_devnas.samplers import STAGE_KEY
from tests.samplers._objectives import SPACE

ROOT = Path(__file__).parents[2]
# SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; psycopg2 is what CI installs.
POSTGRESQL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"

SERVER = """
import sys
from optuna.storages import get_storage, run_grpc_proxy_server
run_grpc_proxy_server(get_storage(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]))
"""

WORKER = """
import sys
sys.path.insert(0, sys.argv[1])
import optuna
from optuna.storages import GrpcStorageProxy
from optuna_devnas.samplers import DPPSampler
from tests.samplers._objectives import SPACE, cost, objective

optuna.logging.set_verbosity(optuna.logging.WARNING)
storage = GrpcStorageProxy(host="127.0.0.1", port=int(sys.argv[2]))
storage.wait_server_ready(timeout=60)
sampler = DPPSampler(space=SPACE, k=4, cheap_objectives={1: cost})
study = optuna.load_study(study_name=sys.argv[3], storage=storage, sampler=sampler)
study.optimize(objective, n_trials=int(sys.argv[4]))
storage.close()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def proxy() -> Iterator[int]:
    """``run_grpc_proxy_server`` in front of PostgreSQL on a free loopback port."""
    try:
        optuna.storages.RDBStorage(POSTGRESQL)
    except Exception as error:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL is not reachable: {error}")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, POSTGRESQL, str(port)], stderr=subprocess.PIPE
    )
    try:
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
def test_four_workers_through_the_proxy_never_train_an_architecture_twice(proxy: int) -> None:
    name = f"dpp-grpc-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=POSTGRESQL, directions=["minimize"] * 2)
    n_workers, n_trials = 4, 5
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [str(ROOT), str(proxy), name, str(n_trials)]
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, *args], env=env, stderr=subprocess.PIPE)
        for _ in range(n_workers)
    ]
    errors = [worker.communicate(timeout=500)[1].decode() for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * n_workers, errors
    # No worker gave up on the claims and let the independent sampler pick.
    assert not [e for e in errors if "no free candidate" in e or "does not model" in e], errors
    try:
        study = optuna.load_study(study_name=name, storage=POSTGRESQL)
        trials = study.get_trials(states=(TrialState.COMPLETE,))
        assert len(trials) == len(study.trials) == n_workers * n_trials
        networks = [SPACE.from_params(t.params).canonical() for t in trials]
        assert len(set(networks)) == len(networks)
        # Every trial was planned by DPPSampler (no fallback to the independent sampler).
        assert all(t.system_attrs.get(STAGE_KEY) for t in trials)
        assert {a.layers for a in SPACE.initial()} <= {n.layers for n in networks}
    finally:
        optuna.delete_study(study_name=name, storage=POSTGRESQL)
