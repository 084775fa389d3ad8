"""``scripts/storage_scale.py`` at a small scale: figures for both modes, no duplicate."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import optuna
import pytest

from benchmarks._nb201_table import DEFAULT_TABLE

SCRIPT = Path(__file__).parents[2] / "scripts" / "storage_scale.py"
POSTGRESQL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("storage_scale", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(not DEFAULT_TABLE.is_file(), reason=f"no NAS-Bench-201 table {DEFAULT_TABLE}")
def test_three_workers_direct_and_through_the_proxy(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        optuna.storages.RDBStorage(POSTGRESQL)
    except Exception as error:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL is not reachable: {error}")
    direct, proxy = _script().main(["--url", POSTGRESQL, "--workers", "3", "--trials", "4"])
    for result in (direct, proxy):
        assert result["trials"] == 12 and result["duplicates"] == 0
        assert result["trials_per_minute"] > 0 and result["median_trial_s"] > 0
    # The proxy's client keeps finished trials: it asks for much less than SQL statements.
    assert 0 < proxy["round_trips_per_trial"] < direct["round_trips_per_trial"] / 2
    table = capsys.readouterr().out
    assert "| PostgreSQL | 3 | 12 |" in table and "| gRPC proxy + PostgreSQL | 3 | 12 |" in table
