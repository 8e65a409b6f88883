"""Repeated failed sign-ins lock the account (django-axes); each failure is logged."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.accounts.conftest import PASSWORD


@pytest.mark.django_db
def test_account_locks_after_repeated_failures(client, make_user):
    user = make_user("requester")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/login/", {"username": user.username, "password": "wrong"})
        assert response.status_code == 200  # the form again, with an error
    locked = client.post("/login/", {"username": user.username, "password": "wrong"})
    assert locked.status_code == 429
    assert b"Too many failed sign-ins" in locked.content
    # Even the right password is refused while locked.
    again = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert again.status_code == 429
    assert not client.get("/").status_code == 200


@pytest.mark.django_db
def test_a_success_before_the_limit_resets_the_count(client, make_user):
    user = make_user("requester")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/login/", {"username": user.username, "password": "wrong"})
    assert (
        client.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    )
    client.post("/logout/")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert (
            client.post("/login/", {"username": user.username, "password": "wrong"}).status_code
            == 200
        )
