"""Opening storages: SQLite files are found, never created by a command that only reads."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from optuna_devnas.commands._storage import (
    StorageError,
    describe_storage,
    load_study,
    open_existing_storage,
    sqlite_path,
)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///devnas.db", Path("devnas.db")),
        ("sqlite:////tmp/x/devnas.db", Path("/tmp/x/devnas.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:devnas.db?mode=ro&uri=true", None),
        ("postgresql://postgres@127.0.0.1:5432/test", None),
        ("not-a-url", None),
    ],
)
def test_sqlite_path(url: str, path: Path | None) -> None:
    assert sqlite_path(url) == path


def test_a_missing_sqlite_file_is_refused_and_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageError, match=f"no database file '{tmp_path / 'x.db'}'"):
        open_existing_storage("sqlite:///x.db")
    with pytest.raises(StorageError, match="no database file"):
        load_study("sqlite:///x.db", "s")
    assert list(tmp_path.iterdir()) == []
    assert describe_storage("sqlite:///x.db") == f"sqlite:///{tmp_path / 'x.db'}"
    optuna.create_study(study_name="s", storage="sqlite:///x.db")
    assert isinstance(open_existing_storage("sqlite:///x.db"), optuna.storages.RDBStorage)
    with pytest.raises(Exception, match="was not created by 'devnas search'"):
        load_study("sqlite:///x.db", "s")
    with pytest.raises(Exception, match=r"No study named 't' .* \(studies there: 's'\)"):
        load_study("sqlite:///x.db", "t")
