"""The registry's answer to the jobs layer's model-source hook (editplatform.jobs.model_source).

- ``resolve(None)``: the active version of the edit queue. With nothing registered,
  None: the platform keeps using settings.MODEL_BUNDLE. Once anything is registered the
  registry governs: no active version means no model (503), never a silent fallback.
- ``resolve(version)``: the bundle of a version a job was pinned to. Unknown or retired
  versions are refused (the job fails naming the version); a registered version that is
  no longer active still serves the jobs pinned to it.
- ``still_active(ref)``: inside a submit's transaction, is the answer a web process
  cached from ``resolve(None)`` still the active version? One statement, no ORM.
"""

from __future__ import annotations

from pathlib import Path

from django.db import connection

from editplatform.jobs.engine import ModelUnavailable
from editplatform.jobs.model_source import ModelRef, UnknownModelVersion
from editplatform.models_registry.models import DEFAULT_PURPOSE, ModelVersion


def resolve(version: str | None) -> ModelRef | None:
    if version is None:
        active = ModelVersion.objects.filter(
            purpose=DEFAULT_PURPOSE, state=ModelVersion.State.ACTIVE
        ).first()
        if active is not None:
            return ModelRef(Path(active.path), active.version)
        if not ModelVersion.objects.exists():
            return None
        raise ModelUnavailable("no model version is active; an admin must activate one")
    row = ModelVersion.objects.filter(version=version).first()
    if row is None:
        if not ModelVersion.objects.exists():
            return None  # pre-registry pin: the engine checks MODEL_BUNDLE's hash
        raise UnknownModelVersion(
            f"the job was submitted for model version {version[:12]}, which is not registered"
        )
    if row.state == ModelVersion.State.RETIRED:
        raise UnknownModelVersion(
            f"the job was submitted for model version {row.short} ({row.name}), "
            "which has been retired"
        )
    return ModelRef(Path(row.path), row.version)


def still_active(ref: ModelRef) -> bool:
    """Is ``ref`` still what ``resolve(None)`` answers (version None: nothing registered)?

    Called inside the job's transaction. On PostgreSQL the active row is share-locked
    (``FOR SHARE``) until the job commits: :func:`services.activate` locks the row it
    deactivates ``FOR UPDATE``, so it waits and a committed job never names a version
    that was deactivated before the job committed. SQLite has no row locks; there the
    job's transaction has already written (its artifact row) and holds the database's
    write lock, which does the same.
    """
    table = connection.ops.quote_name(ModelVersion._meta.db_table)
    with connection.cursor() as cursor:
        if ref.version is None:
            cursor.execute(f"SELECT 1 FROM {table} LIMIT 1")
            return cursor.fetchone() is None
        lock = " FOR SHARE" if connection.features.has_select_for_update else ""
        cursor.execute(
            f"SELECT path FROM {table} WHERE version = %s AND purpose = %s AND state = %s{lock}",
            [ref.version, DEFAULT_PURPOSE, ModelVersion.State.ACTIVE.value],
        )
        row = cursor.fetchone()
        return row is not None and Path(row[0]) == Path(ref.path)
