from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pytest

from optuna_devnas.tracking._claims import claim, claims


@pytest.mark.parametrize("kind", ["memory", "sqlite", "sqlite-cached"])
def test_the_first_writer_wins_and_later_ones_read_its_value(kind: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'claims.db'}"
    storage: optuna.storages.BaseStorage = {
        "memory": lambda: optuna.storages.InMemoryStorage(),
        "sqlite": lambda: optuna.storages.RDBStorage(url),
        "sqlite-cached": lambda: optuna.storages.get_storage(url),
    }[kind]()
    study = optuna.create_study(storage=storage)
    assert claim(study, "devnas:x:a", "first") == "first"
    assert claim(study, "devnas:x:a", "second") == "first"
    # Optuna's own setter would overwrite: the claim is not an upsert.
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda i: claim(study, "devnas:x:b", i), range(8)))
    assert len(set(won)) == 1
    assert claims(study, "devnas:x:") == {
        "devnas:x:a": "first",
        "devnas:x:b": won[0],
    }
