"""The API's schema and docs for integrators: readable without credentials, typed so a
generated client works (edits an object, artifacts bytes, cursors as fields, the
`Api-Key` header explained), with examples from the loaded catalog and no internal names.
"""

from __future__ import annotations

import inspect
import json
import re
import sys

import pytest
from openapi_spec_validator import validate
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def served_schema(client=None) -> dict:
    response = (client or APIClient()).get("/api/v1/schema?format=json")
    assert response.status_code == 200, response.content[:300]
    return json.loads(response.content)


def texts(node, where=""):
    """Every (where, description or summary) in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "summary") and isinstance(value, str):
                yield where, value
            else:
                yield from texts(value, f"{where}/{key}")
    elif isinstance(node, list):
        for value in node:
            yield from texts(value, where)


def test_schema_and_docs_are_served_without_credentials_with_security_headers():
    anonymous = APIClient()
    validate(served_schema(anonymous))
    docs = anonymous.get("/api/v1/docs")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
    assert (
        "script-src 'self'" in docs["Content-Security-Policy"] and docs["X-Frame-Options"] == "DENY"
    )
    script = anonymous.get("/api/v1/docs?script=")
    assert script.status_code == 200 and "javascript" in script["Content-Type"]
    # a stale or mistyped key does not lock an integrator out of the docs either
    stale = APIClient(HTTP_AUTHORIZATION="Api-Key nope.nope")
    assert (
        stale.get("/api/v1/schema").status_code == 200
        and stale.get("/api/v1/docs").status_code == 200
    )
    # ...while the API itself still refuses it
    assert stale.get("/api/v1/jobs").status_code == 401


def test_examples_come_from_the_loaded_catalog(model_bundle):
    from tests import catalog

    schemas = served_schema()["components"]["schemas"]
    example = schemas["JobCreateJson"]["properties"]["edits"]["example"]
    assert isinstance(example, dict) and len(example) == 1
    ((name, strength),) = example.items()
    spec = catalog.catalog()[name]
    assert (
        not spec.sensitive and spec.min_strength <= strength <= spec.max_strength and strength != 0
    )
    assert json.loads(schemas["JobCreate"]["properties"]["edits"]["example"]) == example
    assert "smile" not in json.dumps(served_schema()) or "smile" in catalog.catalog().names


def test_without_a_model_the_schema_is_served_without_examples(settings, tmp_path):
    settings.MODEL_BUNDLE = tmp_path / "no-bundle"
    edits = served_schema()["components"]["schemas"]["JobCreateJson"]["properties"]["edits"]
    assert "example" not in edits and "no model is loaded" in edits["description"]


def test_types_a_generated_client_needs(model_bundle):
    spec = served_schema()
    schemas = spec["components"]["schemas"]
    number_map = {"type": "number", "format": "double"}
    assert schemas["JobCreateJson"]["properties"]["edits"]["type"] == "object"
    assert schemas["JobCreateJson"]["properties"]["edits"]["additionalProperties"] == number_map
    assert schemas["Job"]["properties"]["edits"]["additionalProperties"] == number_map
    assert (
        schemas["JobCreate"]["properties"]["edits"]["type"] == "string"
    )  # multipart: JSON text, documented
    assert "JSON object as text" in schemas["JobCreate"]["properties"]["edits"]["description"]
    bodies = spec["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]
    assert set(bodies) == {"application/json", "multipart/form-data"}
    artifact = spec["paths"]["/api/v1/jobs/{job_id}/artifacts/{kind}"]["get"]["responses"]["200"][
        "content"
    ]
    assert artifact["application/octet-stream"]["schema"] == {"type": "string", "format": "binary"}
    page = schemas["PaginatedJobList"]
    assert {"next_cursor", "previous_cursor", "results"} <= set(page["required"])
    scheme = spec["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "Api-Key" in scheme["description"]
    assert 'prefix="Api-Key"' in spec["info"]["description"]


def internal_names() -> set[str]:
    """Names of the project's own classes (CamelCase) and settings, as loaded now."""
    names = set()
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith(("editplatform.", "audit.", "inversion.")):
            continue
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and getattr(value, "__module__", "").startswith(module_name)
                and sum(c.isupper() for c in name) >= 2
            ):
                names.add(name)
    from django.conf import settings

    names |= {name for name in dir(settings) if name.isupper() and "_" in name}
    return names


def test_descriptions_name_no_internal_classes_or_settings(model_bundle):
    spec = served_schema()
    names = internal_names()
    assert {
        "EditJob",
        "DomainError",
        "JobCreateSerializer",
        "UPLOAD_MAX_BYTES",
    } <= names  # the net works
    pattern = re.compile(
        r"\b(" + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + r")\b"
    )
    leaks = [(where, match) for where, text in texts(spec) for match in pattern.findall(text)]
    leaks += [
        (where, text)
        for where, text in texts(spec)
        if re.search(r"\.objects\b|editplatform\.", text)
    ]
    assert leaks == []
