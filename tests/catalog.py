"""Edits as the platform's loaded bundle defines them (the shipped demo bundle when it
exists, else the seeded bootstrap bundle), so no test hard-codes a catalog.

Call these inside tests (the `model_bundle` fixture makes sure the bundle exists).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from inversion.editing.catalog import EditCatalog, EditSpec


@cache
def catalog() -> EditCatalog:
    from django.conf import settings

    return EditCatalog.load(Path(settings.MODEL_BUNDLE) / "catalog.json")


def plain(index: int = 0) -> EditSpec:
    """The index-th edit that needs no approval."""
    return [spec for spec in catalog() if not spec.sensitive][index]


def other_than(spec: EditSpec) -> EditSpec:
    """Any other edit of the catalog (sensitive or not)."""
    return next(other for other in catalog() if other.name != spec.name)


def sensitive(index: int = 0) -> EditSpec:
    """The index-th edit marked sensitive (needs four-eyes approval)."""
    return [spec for spec in catalog() if spec.sensitive][index]


def strength(spec: EditSpec, fraction: float = 0.75) -> float:
    """A strength inside the edit's range: `fraction` of the way from min to max.

    With the portal slider's 100 steps, 0.75 lands exactly on a step.
    """
    return round(spec.min_strength + fraction * (spec.max_strength - spec.min_strength), 4)


def request(spec: EditSpec | None = None, fraction: float = 0.75) -> dict[str, float]:
    spec = spec or plain()
    return {spec.name: strength(spec, fraction)}


def request_json(spec: EditSpec | None = None, fraction: float = 0.75) -> str:
    return json.dumps(request(spec, fraction))
