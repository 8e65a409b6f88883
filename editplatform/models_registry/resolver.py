"""The registry's answer to the jobs layer's model-source hook (editplatform.jobs.model_source).

- ``resolve(None)``: the active version of the edit queue. With nothing registered,
  None: the platform keeps using settings.MODEL_BUNDLE. Once anything is registered the
  registry governs: no active version means no model (503), never a silent fallback.
- ``resolve(version)``: the bundle of a version a job was pinned to. Unknown or retired
  versions are refused (the job fails naming the version); a registered version that is
  no longer active still serves the jobs pinned to it.
"""

from __future__ import annotations

from pathlib import Path

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
