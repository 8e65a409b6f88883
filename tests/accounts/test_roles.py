"""Roles are assignable by command and in the admin; every change is an audit event."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from editplatform.accounts.roles import ensure_groups, roles_of


@pytest.mark.django_db
def test_roles_command_grants_and_revokes_with_audit_events():
    user = get_user_model().objects.create_user("dana", password="x" * 20)
    call_command("roles", "grant", "dana", "approver")
    assert roles_of(get_user_model().objects.get(pk=user.pk)) == {"approver"}
    call_command("roles", "revoke", "dana", "approver")
    assert roles_of(get_user_model().objects.get(pk=user.pk)) == set()
    events = list(
        AuditEvent.objects.filter(action="role.changed", subject=f"user:{user.pk}").order_by("seq")
    )
    assert [(e.payload["added"], e.payload["removed"]) for e in events] == [
        (["approver"], []),
        ([], ["approver"]),
    ]
    assert events[0].actor_name == "system/shell"


@pytest.mark.django_db
def test_unknown_role_or_user_is_a_clear_error():
    with pytest.raises(CommandError, match="no user named"):
        call_command("roles", "grant", "ghost", "approver")


@pytest.mark.django_db
def test_role_change_in_the_admin_is_audited_with_the_admin_as_actor(client):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.accounts.conftest import current_code

    groups = ensure_groups()
    admin = get_user_model().objects.create_user("root-admin", password="x" * 20, is_staff=True)
    admin.groups.add(groups["admin"])
    TOTPDevice.objects.create(user=admin, name="t", confirmed=True)
    target = get_user_model().objects.create_user("erin", password="x" * 20)
    assert (
        client.post("/login/", {"username": "root-admin", "password": "x" * 20}).status_code == 302
    )
    assert client.post("/account/2fa/", {"token": current_code(admin)}).status_code == 302
    page = client.get(f"/admin/auth/user/{target.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {
        name: form.initial.get(name) or ""
        for name in form.fields
        if name not in ("password", "groups")
    }
    data.update({"groups": [groups["reviewer"].pk], "is_active": "on"})
    response = client.post(f"/admin/auth/user/{target.pk}/change/", data)
    assert response.status_code == 302, (
        response.context["adminform"].form.errors if response.context else response
    )
    event = AuditEvent.objects.get(action="role.changed", subject=f"user:{target.pk}")
    assert event.actor_name == "root-admin" and event.payload["added"] == ["reviewer"]
