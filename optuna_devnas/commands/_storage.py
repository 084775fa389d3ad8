"""Opening a study's storage for a command: RDB storage with heartbeat, or one clear error.

``devnas search`` may create a database; every other command only reads or joins a study, so
for them a SQLite URL naming a file that does not exist is refused instead of creating an empty
database there (:func:`open_existing_storage`). :func:`load_study` returns a study created by
``devnas search`` together with the configuration stored in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from optuna_devnas._errors import DevnasError
from optuna_devnas.commands._config import CONFIG_ATTR, SearchConfig


class StorageError(DevnasError):
    """A storage URL is malformed, names no database, or its database cannot be reached."""


def open_storage(url: str, config: SearchConfig | None = None) -> optuna.storages.BaseStorage:
    """Optuna's RDB storage for ``url``, with heartbeat and retry of dead workers' trials."""
    import sqlalchemy.exc

    from optuna_devnas.commands._recovery import RequeueTrial

    config = config or SearchConfig()
    kwargs: dict[str, Any] = {
        "heartbeat_interval": config.heartbeat_interval,
        "grace_period": config.grace_period,
        "heartbeat_stale_trial_callback": RequeueTrial(max_retry=config.max_retry),
    }
    try:
        return optuna.storages.RDBStorage(url, **kwargs)
    except (sqlalchemy.exc.ArgumentError, ValueError) as error:
        raise StorageError(
            f"Got storage {url!r}, which is not a database URL such as "
            "'sqlite:///devnas.db' or 'postgresql://user@host:5432/db' "
            f"({first_line(error)})."
        ) from None
    except (sqlalchemy.exc.SQLAlchemyError, ImportError) as error:
        raise StorageError(f"Cannot open storage {url!r}: {first_line(error)}") from None


def open_existing_storage(
    url: str, config: SearchConfig | None = None
) -> optuna.storages.BaseStorage:
    """:func:`open_storage`, refusing a SQLite file that does not exist (never creating one)."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise StorageError(
            f"Got storage {url!r}, but there is no database file {str(path.resolve())!r}; "
            "'devnas search' creates one."
        )
    return open_storage(url, config)


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or ``None`` (another database, or in memory)."""
    import sqlalchemy.engine
    import sqlalchemy.exc

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return None  # open_storage says what is wrong with it
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # a SQLite URI filename
        return None
    return Path(database)


def describe_storage(url: str) -> str:
    """``url`` for a person: a SQLite URL with its file's absolute path."""
    path = sqlite_path(url)
    if path is None:
        return url
    return f"sqlite:///{path.resolve()}"


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def load_study(url: str, name: str) -> tuple[optuna.Study, SearchConfig]:
    """An existing study created by ``devnas search`` and the configuration stored in it."""
    storage = open_existing_storage(url)
    names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
    if name not in names:
        shown = ", ".join(repr(n) for n in sorted(names)[:10]) or "none"
        raise DevnasError(f"No study named {name!r} in {url!r} (studies there: {shown}).")
    study = optuna.load_study(study_name=name, storage=storage)
    raw = study.user_attrs.get(CONFIG_ATTR)
    if raw is None:
        raise DevnasError(f"Study {name!r} was not created by 'devnas search' (no configuration).")
    config = SearchConfig.from_dict(raw, source=f"study {name!r}")
    # The heartbeat settings are the study's; reopen the storage with them.
    study = optuna.load_study(study_name=name, storage=open_storage(url, config))
    return study, config
