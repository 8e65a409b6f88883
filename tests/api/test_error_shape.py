"""One domain error, rendered once: the API's {detail, code, field} and the portal's page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from editplatform.accounts.roles import REQUESTER, ensure_groups
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def requester(db):
    user = get_user_model().objects.create_user("erin", password="x" * 20)
    user.groups.add(ensure_groups()[REQUESTER.name])
    return user


@pytest.fixture
def no_model(settings, tmp_path):
    settings.MODEL_BUNDLE = tmp_path / "missing-bundle"


def test_a_service_refusal_is_the_one_error_shape(requester):
    response = api_client_for(requester).get("/api/v1/jobs", {"state": "finished,queued"})
    assert response.status_code == 400
    assert response.json() == {
        "detail": response.json()["detail"],
        "code": "invalid",
        "field": "state",
    }
    assert "unknown state(s) ['finished']" in response.json()["detail"]


def test_a_missing_model_is_503_in_the_api_and_on_the_portal(requester, no_model):
    response = api_client_for(requester).get("/api/v1/edits")
    assert response.status_code == 503 and response.json()["code"] == "model_unavailable"
    assert response.json()["detail"].startswith("the model is not available: model bundle")
    page = api_client_for(requester).get("/jobs/new/")
    assert page.status_code == 503 and b"has no manifest.json" in page.content
