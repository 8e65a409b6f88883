"""The version a job is pinned to is visible where decisions are made: in the API's job
representation (documented in the served schema) and on the approver's review page,
linked to its model card, so an approver knows which model computed what they approve."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from editplatform.accounts.roles import ensure_groups
from editplatform.jobs.states import State
from editplatform.models_registry import services
from tests.api.test_schema_public import served_schema
from tests.approvals.test_four_eyes import sensitive_job
from tests.conftest import api_client_for, mark_two_factor_verified

pytestmark = pytest.mark.django_db


def test_the_pinned_version_is_in_the_api_and_on_the_review_page(registry_people, model_bundle):
    people = registry_people
    demo = services.register_bundle(source=Path(model_bundle), user=people["admin1"], name="demo")
    services.approve(demo, people["mapprover"], bundle_sha256=demo.version)
    services.activate(demo, people["admin1"], bundle_sha256=demo.version)

    job = sensitive_job(people["req"])  # computed by the real task, outputs held
    assert job.state == State.AWAITING_APPROVAL and job.model_pin == demo.version

    body = api_client_for(people["req"]).get(f"/api/v1/jobs/{job.pk}").json()
    assert body["model_pin"] == demo.version
    assert body["model_version"] == demo.version
    field = served_schema()["components"]["schemas"]["Job"]["properties"]["model_pin"]
    assert field["readOnly"] is True and "pinned" in field["description"]

    approver = get_user_model().objects.create_user("ap", password="x" * 20)
    approver.groups.add(ensure_groups()["approver"])
    client = Client()
    client.force_login(approver)
    mark_two_factor_verified(client, approver)
    page = client.get(f"/approvals/{job.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="model-pin"' in html
    assert f'href="/models/{demo.version}/"' in html and demo.version in html
    assert client.get(f"/models/{demo.version}/").status_code == 200  # the card opens for them
