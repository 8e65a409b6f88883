"""Schema-time examples for the jobs API, taken from the catalog of the loaded model.

A static example would name an edit the deployed bundle may not have (the demo bundle
has no `smile`); so the OpenAPI document is post-processed on every generation
(SPECTACULAR_SETTINGS POSTPROCESSING_HOOKS): the example edit is the catalog's first
edit that needs no approval, at a strength inside its range. Without a loadable bundle
the schema is still served, without example values, and says where the names come
from.
"""

from __future__ import annotations

import json

from editplatform.core.errors import DomainError
from editplatform.jobs import engine

NO_MODEL_NOTE = " (no model is loaded on this server now, so no example can be given)"
PURPOSE_EXAMPLE = "Campaign photo retouch approved by marketing"


def example_edits() -> dict[str, float] | None:
    """``{name: strength}`` valid for the loaded catalog, or None without a model."""
    try:
        catalog = engine.get_catalog().catalog
    except DomainError:
        return None
    specs = [spec for spec in catalog if not spec.sensitive] or list(catalog)
    if not specs:
        return None
    spec = specs[0]
    strength = spec.default_strength or round(
        spec.min_strength + 0.75 * (spec.max_strength - spec.min_strength), 2
    )
    return {spec.name: strength}


def catalog_examples(result, generator, request, public):
    """drf-spectacular postprocessing hook: put catalog examples on the job request bodies."""
    schemas = result.get("components", {}).get("schemas", {})
    edits = example_edits()
    for name, as_text in (
        ("JobCreateJsonRequest", False),
        ("JobCreateJson", False),
        ("JobCreateRequest", True),
        ("JobCreate", True),
    ):
        props = schemas.get(name, {}).get("properties", {})
        if "edits" not in props:
            continue
        if edits is None:
            props["edits"]["description"] = props["edits"].get("description", "") + NO_MODEL_NOTE
            continue
        props["edits"]["example"] = json.dumps(edits) if as_text else edits
        props.get("purpose", {})["example"] = PURPOSE_EXAMPLE
        props.get("consent", {})["example"] = True
    return result
