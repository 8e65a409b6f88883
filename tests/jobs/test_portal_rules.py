"""The portal form only shapes input: the job services' rules (the API's) decide, with the
same messages, shown on the field to blame; nothing is stored for a refused request."""

from __future__ import annotations

import pytest

from editplatform.jobs.models import EditJob
from tests import catalog
from tests.jobs import images

pytestmark = pytest.mark.django_db


def post_new_job(client, user, **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    spec = catalog.plain()
    data = {
        "image": SimpleUploadedFile("photo.png", images.png()),
        "purpose": "Portal rules: a real purpose",
        "consent": "on",
        "EDIT": str(catalog.strength(spec)),
        **fields,
    }
    data[f"edit_{spec.name}"] = data.pop("EDIT")  # the slider of the catalog's first plain edit
    client.force_login(user)
    return client.post("/jobs/new/", data)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"purpose": "too short"}, "purpose is required: say in at least 10 characters"),
        ({"consent": ""}, "consent must be attested"),
        ({"EDIT": "lots"}, "strength"),
        ({"EDIT": "1e9"}, "allowed:"),
    ],
    ids=["purpose", "consent", "not-a-number", "out-of-range"],
)
def test_the_services_rules_refuse_a_portal_request(
    fields, message, client, requester, isolated_storage, model_bundle
):
    response = post_new_job(client, requester, **fields)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert EditJob.objects.count() == 0


def test_a_valid_portal_request_becomes_a_job(client, requester, isolated_storage, model_bundle):
    response = post_new_job(client, requester)
    job = EditJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.source == "portal" and job.edits == catalog.request()
