"""Fixtures of the API tests: an integration service account and its API clients."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def integration_account(db):
    from django.contrib.auth import get_user_model

    from editplatform.accounts.roles import INTEGRATION, ensure_groups

    user = get_user_model().objects.create_user(f"svc-api-{uuid.uuid4().hex[:6]}", password=None)
    user.groups.add(ensure_groups()[INTEGRATION.name])
    return user


@pytest.fixture
def key_client(integration_account):
    """A DRF test client sending `Authorization: Api-Key ...` with every jobs scope."""
    from tests.conftest import api_client_for

    return api_client_for(integration_account, scopes=("jobs:read", "jobs:write"))


@pytest.fixture
def make_person(db):
    """A person with one role (by its name)."""
    from django.contrib.auth import get_user_model

    from editplatform.accounts.roles import ensure_groups

    def make(role: str):
        user = get_user_model().objects.create_user(f"{role}-{uuid.uuid4().hex[:6]}", password=None)
        user.groups.add(ensure_groups()[role])
        return user

    return make


def assert_error_shape(response, status: int | None = None) -> dict:
    """A 4xx answer in the one error shape: {detail: str, code: str[, field: str]}."""
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    if status is not None:
        assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) <= {"detail", "code", "field"}, body
    assert isinstance(body["detail"], str) and body["detail"] and isinstance(body["code"], str), (
        body
    )
    assert isinstance(body.get("field", ""), str), body
    return body
