"""First-writer-wins claims in an Optuna study's storage: how workers agree on one MLflow run.

Workers that track one study may start at the same instant, each about to create the study's
parent run (or a trial's run). MLflow cannot create a run "if absent", so the decision is made
in the Optuna storage, which every worker shares: :func:`claim` inserts a study system
attribute only if its key is absent and returns the value stored, its own or the first
writer's. A worker that created a run and then loses the claim deletes its run; every worker
uses the run id the claim returns.

How the insert is made atomic depends on the storage:

- :class:`~optuna.storages.RDBStorage` (SQLite, PostgreSQL, MySQL), also wrapped in Optuna's
  cache: a plain ``INSERT`` into ``study_system_attributes``, whose ``(study_id, key)`` unique
  constraint makes every writer but the first fail. (Optuna's ``set_study_system_attr``
  updates an existing key instead, so the last writer would win.)
- :class:`~optuna.storages.InMemoryStorage` (one process): check and set under its lock.
- Any other storage (journal, gRPC): check, set and read back. Two writers at the same instant
  may then disagree; :mod:`optuna_devnas.tracking` documents RDB storages for many workers.
"""

from __future__ import annotations

import json
import time
from typing import Any

import optuna

from optuna_devnas._optuna_storage import storage_of, study_id_of, study_system_attrs

_RETRIES = 20  # SQLite answers "database is locked" to writers that collide


def claim(study: optuna.Study, key: str, value: Any) -> Any:
    """Store ``value`` as ``study``'s system attribute ``key`` unless the key exists; return
    the value stored under ``key`` afterwards (``value`` if this call was first)."""
    backend, study_id = _backend(storage_of(study)), study_id_of(study)
    existing = backend.get_study_system_attrs(study_id)
    if key in existing:
        return existing[key]
    if isinstance(backend, optuna.storages.RDBStorage):
        _insert(backend, study_id, key, value)
    elif isinstance(backend, optuna.storages.InMemoryStorage):
        with backend._lock:
            if key not in backend.get_study_system_attrs(study_id):
                backend.set_study_system_attr(study_id, key, value)
    else:
        backend.set_study_system_attr(study_id, key, value)
    return backend.get_study_system_attrs(study_id)[key]


def claims(study: optuna.Study, prefix: str) -> dict[str, Any]:
    """Every claim of ``study`` whose key starts with ``prefix``, by key."""
    attrs = study_system_attrs(study)
    return {key: value for key, value in attrs.items() if key.startswith(prefix)}


def _backend(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    # optuna.storages.get_storage wraps an RDBStorage in a cache that passes study attributes
    # straight through; the insert needs the RDBStorage itself (the cache has no public name).
    from optuna.storages._cached_storage import _CachedStorage

    return storage._backend if isinstance(storage, _CachedStorage) else storage


def _insert(storage: optuna.storages.RDBStorage, study_id: int, key: str, value: Any) -> None:
    """``INSERT`` the attribute; a unique-key violation means another writer was first."""
    from optuna.storages._rdb import models
    import sqlalchemy.exc

    table = models.StudySystemAttributeModel.__table__
    row = {"study_id": study_id, "key": key, "value_json": json.dumps(value)}
    for attempt in range(_RETRIES):
        try:
            with storage.engine.begin() as connection:
                connection.execute(table.insert().values(**row))
            return
        except sqlalchemy.exc.IntegrityError:
            return  # the first writer's value stays
        except sqlalchemy.exc.OperationalError:
            if attempt == _RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
