"""Integration accounts are integration-only (issue 11, item 2).

The attack: a service account that also holds reviewer or approver gets those powers
through its API key, with no second factor. Granting such a mix is refused on every
path (admin form, `roles` command, ORM), a key for a person is a form error (it was a
500), and a key whose account somehow holds a human role is refused at the door.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from rest_framework.test import APIClient

from editplatform.accounts.models import IntegrationKey
from editplatform.accounts.roles import ensure_groups
from editplatform.accounts.services import AccountError, create_api_key, grant_role
from tests.conftest import mark_two_factor_verified

User = get_user_model()


@pytest.fixture
def service_account(db):
    user = User.objects.create_user("svc-crm", password=None)
    user.groups.add(ensure_groups()["integration"])
    return user


@pytest.fixture
def admin_client(db):
    admin = User.objects.create_user("root-int", password="x" * 20, is_staff=True)
    admin.groups.add(ensure_groups()["admin"])
    client = APIClient()
    client.force_login(admin)
    mark_two_factor_verified(client, admin)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["reviewer", "approver", "requester", "admin"])
def test_roles_command_refuses_a_human_role_for_a_service_account(service_account, role):
    with pytest.raises(CommandError, match="integration accounts are integration-only"):
        call_command("roles", "grant", service_account.username, role)
    assert set(service_account.groups.values_list("name", flat=True)) == {"integration"}


@pytest.mark.django_db
def test_the_integration_role_is_refused_for_a_person_and_in_the_shell(service_account):
    person = User.objects.create_user("rosa-int", password="x" * 20)
    person.groups.add(ensure_groups()["reviewer"])
    with pytest.raises(AccountError, match="integration-only"):
        grant_role(person, "integration")
    groups = ensure_groups()
    with pytest.raises(AccountError, match="integration-only"), transaction.atomic():
        service_account.groups.add(groups["reviewer"])  # the m2m guard, for the shell
    with pytest.raises(AccountError, match="integration-only"), transaction.atomic():
        groups["approver"].user_set.add(service_account)
    assert set(service_account.groups.values_list("name", flat=True)) == {"integration"}


@pytest.mark.django_db
def test_admin_form_refuses_a_human_role_for_a_service_account(service_account, admin_client):
    page = admin_client.get(f"/admin/auth/user/{service_account.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form.initial.get(name) for name in form.fields if name not in ("password", "groups")}
    data = {k: ("on" if v is True else v) for k, v in data.items() if v not in (None, False)}
    groups = ensure_groups()
    data["groups"] = [groups["integration"].pk, groups["reviewer"].pk]
    response = admin_client.post(f"/admin/auth/user/{service_account.pk}/change/", data)
    assert response.status_code == 200
    assert "integration accounts are integration-only" in str(response.context["adminform"].form.errors)
    assert set(service_account.groups.values_list("name", flat=True)) == {"integration"}


@pytest.mark.django_db
def test_admin_key_for_a_person_is_a_form_error_not_a_500(admin_client):
    person = User.objects.create_user("alice-int", password="x" * 20)
    person.groups.add(ensure_groups()["requester"])
    response = admin_client.post("/admin/accounts/integrationkey/add/", {
        "name": "sneaky", "service_account": person.pk, "scopes": '["jobs:read"]', "allowed_networks": "[]"})
    assert response.status_code == 200
    errors = str(response.context["adminform"].form.errors)
    assert "service_account" in errors
    assert not IntegrationKey.objects.exists()


@pytest.mark.django_db
def test_admin_key_for_a_service_account_is_created_and_shown_once(service_account, admin_client):
    response = admin_client.post("/admin/accounts/integrationkey/add/", {
        "name": "crm", "service_account": service_account.pk, "scopes": ["jobs:read"], "allowed_networks": ""},
        follow=True)
    assert response.status_code == 200
    key = IntegrationKey.objects.get()
    assert any(f"{key.prefix}." in str(m) for m in response.context["messages"])


@pytest.mark.django_db
def test_apikeys_command_refuses_a_person():
    person = User.objects.create_user("bob-int", password="x" * 20)
    person.groups.add(ensure_groups()["approver"])
    with pytest.raises(CommandError, match="not an integration service account"):
        call_command("apikeys", "create", "--account", person.username, "--name", "x", "--scopes", "jobs:read")


@pytest.mark.django_db
def test_a_key_whose_account_holds_a_human_role_is_refused(service_account):
    _key, raw = create_api_key(service_account, name="crm", scopes=["jobs:read", "audit:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.get("/api/v1/audit/events").status_code == 200
    # Rows written past every guard (an old database, a raw SQL insert):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO auth_user_groups (user_id, group_id) VALUES (%s, %s)",
                       [service_account.pk, ensure_groups()["reviewer"].pk])
    response = client.get("/api/v1/audit/events")
    assert response.status_code == 403 and "human role" in response.json()["detail"]
    assert client.get("/api/v1/jobs").status_code == 403
