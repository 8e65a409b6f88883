"""Issue 11 attacks on accounts, reproduced through the real stack, now failing.

- an admin ticks "superuser" on their own account, then reads the audit tables;
- an admin takes over a reviewer (2FA reset or password reset, then signs in as them);
- changes made in a shell through the ORM leave no trace.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from editplatform.accounts.account_signals import SuperuserRefused
from editplatform.accounts.models import AccountRecovery
from editplatform.accounts.recovery import RecoveryError, confirm_recovery, issue_enrolment_code
from editplatform.accounts.roles import has_role, roles_of
from tests.accounts.conftest import PASSWORD, current_code
from tests.conftest import mark_two_factor_verified

User = get_user_model()


def staff_admin(make_user, name: str):
    user = make_user("admin", name)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    mark_two_factor_verified(client, user)
    return client


def change_form_data(client, user, **overrides) -> dict:
    page = client.get(f"/admin/auth/user/{user.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {
        name: form.initial.get(name) for name in form.fields if name not in ("password", "groups")
    }
    data = {k: ("on" if v is True else v) for k, v in data.items() if v not in (None, False)}
    data["groups"] = [g.pk for g in user.groups.all()]
    data.update(overrides)
    return data


def events(action: str, user) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, subject=f"user:{user.pk}").order_by("seq"))


# --- admin to superuser ----------------------------------------------------------------


@pytest.mark.django_db
def test_admin_cannot_tick_superuser_or_raw_permissions_on_their_own_account(make_user):
    admin = staff_admin(make_user, "mallory")
    client = signed_in(admin)
    page = client.get(f"/admin/auth/user/{admin.pk}/change/")
    assert page.status_code == 200
    assert b"is_superuser" not in page.content and b"user_permissions" not in page.content
    audit_perm = Permission.objects.get(codename="view_auditevent")
    data = change_form_data(client, admin, is_superuser="on", user_permissions=[audit_perm.pk])
    response = client.post(f"/admin/auth/user/{admin.pk}/change/", data)
    assert response.status_code == 302
    admin.refresh_from_db()
    assert not admin.is_superuser and not admin.user_permissions.exists()
    # ... so the audit tables stay closed to the admin.
    assert client.get("/admin/audit/auditevent/").status_code == 403
    assert client.get("/admin/audit/checkpoint/").status_code == 403


@pytest.mark.django_db
def test_superuser_only_by_the_audited_operator_command(make_user, capsys):
    admin = staff_admin(make_user, "mallory2")
    admin.is_superuser = True
    with pytest.raises(SuperuserRefused, match="create_operator_superuser"):
        admin.save()
    with pytest.raises(SuperuserRefused):
        User.objects.create_superuser("sneaky", password=PASSWORD)
    with pytest.raises(CommandError, match="createsuperuser is disabled"):
        call_command("createsuperuser", "--username", "x", "--noinput")
    with pytest.raises(CommandError, match="--reason"):
        call_command("create_operator_superuser", "ops", "--reason", "why")
    call_command("create_operator_superuser", "ops", "--reason", "role table broken, ticket OPS-17")
    ops = User.objects.get(username="ops")
    assert ops.is_superuser
    event = AuditEvent.objects.get(action="account.superuser_created", subject=f"user:{ops.pk}")
    assert (
        event.payload["reason"] == "role table broken, ticket OPS-17"
        and event.actor_name == "system/shell"
    )
    # Admins cannot see or edit the operator's superuser (e.g. reset its password).
    client = signed_in(staff_admin(make_user, "mallory3"))
    assert (
        client.get(f"/admin/auth/user/{ops.pk}/change/").status_code == 302
    )  # "does not exist" redirect
    assert client.get(f"/admin/auth/user/{ops.pk}/password/").status_code == 404


@pytest.mark.django_db
def test_per_user_permissions_granted_in_a_shell_are_logged(make_user):
    admin = staff_admin(make_user, "mallory4")
    admin.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    event = events("account.permissions_changed", admin)[-1]
    assert (
        event.payload["added"] == ["audit.view_auditevent"] and event.actor_name == "system/shell"
    )
    admin.user_permissions.clear()
    assert events("account.permissions_changed", admin)[-1].payload["removed"] == [
        "audit.view_auditevent"
    ]


# --- admin takes over a reviewer ---------------------------------------------------------


@pytest.mark.django_db
def test_reviewer_2fa_reset_needs_re_enrolment_and_a_second_admin(make_user):
    reviewer = make_user("reviewer", "rosa", with_totp=True)
    mallory = staff_admin(make_user, "mallory5")
    second = staff_admin(make_user, "sam")
    client = signed_in(mallory)
    device = TOTPDevice.objects.get(user=reviewer, name="test")
    # The device page shows no key, QR code or config URL.
    page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert (
        page.status_code == 200
        and device.key.encode() not in page.content
        and b"qrcode" not in page.content
    )
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/").status_code in (302, 404)
    reset = client.post(
        "/admin/auth/user/", {"action": "reset_second_factor", "_selected_action": [reviewer.pk]}
    )
    assert reset.status_code == 302
    assert not TOTPDevice.objects.filter(user=reviewer).exists()
    assert events("user.2fa_reset", reviewer)[0].actor_name == "mallory5"
    recovery = AccountRecovery.objects.get(user=reviewer)
    assert recovery.requested_by == mallory and recovery.completed_at is None
    # Mallory knows the password: signing in as the reviewer does not give a device.
    as_rosa = Client()
    assert as_rosa.post("/login/", {"username": "rosa", "password": PASSWORD}).status_code == 302
    page = as_rosa.get("/account/2fa/")
    assert b"Enrolment code" in page.content and b"totp-secret" not in page.content
    # With an enrolment code Mallory issued herself, she can enrol a device as Rosa ...
    issued = client.post(
        "/admin/auth/user/",
        {"action": "issue_enrolment_code", "_selected_action": [reviewer.pk]},
        follow=True,
    )
    code = next(
        str(m).split(": ")[1].split(" ")[0]
        for m in issued.context["messages"]
        if "Enrolment code" in str(m)
    )
    assert as_rosa.post("/account/2fa/", {"enrolment_code": code}).status_code == 302
    as_rosa.get("/account/2fa/")
    assert (
        as_rosa.post(
            "/account/2fa/", {"token": current_code(reviewer, confirmed=False)}
        ).status_code
        == 302
    )
    # ... but the account still cannot review: the reset waits for a second admin.
    assert as_rosa.get("/audit/").status_code == 403
    assert not has_role(User.objects.get(pk=reviewer.pk), "reviewer")
    confirm = client.post(
        "/admin/accounts/accountrecovery/",
        {"action": "confirm", "_selected_action": [recovery.pk]},
        follow=True,
    )
    assert any("cannot also confirm" in str(m) for m in confirm.context["messages"])
    with pytest.raises(RecoveryError, match="only an administrator"):
        confirm_recovery(recovery, by=reviewer)
    assert as_rosa.get("/audit/").status_code == 403
    signed_in(second).post(
        "/admin/accounts/accountrecovery/", {"action": "confirm", "_selected_action": [recovery.pk]}
    )
    recovery.refresh_from_db()
    assert recovery.confirmed_by == second and recovery.completed_at is not None
    assert as_rosa.get("/audit/").status_code == 200
    assert [
        e.action
        for e in AuditEvent.objects.filter(
            subject=f"user:{reviewer.pk}", action__startswith="account.recovery"
        ).order_by("seq")
    ] == ["account.recovery_opened", "account.recovery_confirmed", "account.recovery_completed"]


@pytest.mark.django_db
def test_confirmation_alone_does_not_restore_a_2fa_reset_account(make_user):
    from editplatform.accounts.recovery import reset_two_factor

    approver = make_user("approver", with_totp=True)
    first, second = staff_admin(make_user, "a1"), staff_admin(make_user, "a2")
    reset_two_factor(approver, by=first)
    confirm_recovery(AccountRecovery.objects.get(user=approver), by=second)
    assert roles_of(User.objects.get(pk=approver.pk)) == set()  # not re-enrolled yet


@pytest.mark.django_db
def test_password_reset_of_an_approver_suspends_approving_until_a_second_admin_confirms(make_user):
    approver = make_user("approver", "arjun", with_totp=True)
    mallory = staff_admin(make_user, "mallory6")
    client = signed_in(mallory)
    response = client.post(
        f"/admin/auth/user/{approver.pk}/password/",
        {
            "password1": "a brand new password 99",
            "password2": "a brand new password 99",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    assert events("account.password_changed", approver)[0].actor_name == "mallory6"
    assert events("account.recovery_opened", approver)[0].payload["kind"] == "password"
    as_arjun = signed_in(User.objects.get(pk=approver.pk))
    assert as_arjun.get("/approvals/").status_code == 403
    confirm_recovery(AccountRecovery.objects.get(user=approver), by=staff_admin(make_user, "sam2"))
    assert as_arjun.get("/approvals/").status_code == 200


@pytest.mark.django_db
def test_a_suspended_admin_loses_the_admin_pages(make_user):
    from editplatform.accounts.recovery import reset_two_factor

    target = staff_admin(make_user, "adm-target")
    reset_two_factor(target, by=staff_admin(make_user, "adm-other"))
    TOTPDevice.objects.create(user=target, name="re-enrolled", confirmed=True)
    assert signed_in(User.objects.get(pk=target.pk)).get("/admin/auth/user/").status_code == 403


# --- every change is an event, whichever path -------------------------------------------


@pytest.mark.django_db
def test_shell_changes_to_accounts_groups_devices_and_keys_are_audited(make_user):
    from editplatform.accounts.services import create_api_key

    user = User.objects.create_user("shelly", password=PASSWORD)
    assert events("account.created", user)[0].actor_name == "system/shell"
    user.is_staff = True
    user.save()
    changed = events("account.changed", user)[0]
    assert changed.payload["changed"] == {"is_staff": {"old": False, "new": True}}
    user.set_password("another password 1234")
    user.save()
    assert events("account.password_changed", user)[0].payload["by_owner"] is False
    group = Group.objects.create(name="side-door")
    group.permissions.add(Permission.objects.get(codename="view_auditevent"))
    assert (
        AuditEvent.objects.filter(action="group.changed", subject=f"group:{group.pk}").count() == 2
    )
    device = TOTPDevice.objects.create(user=user, name="x", confirmed=True)
    assert events("user.2fa_enrolled", user)
    device.delete()
    assert events("user.2fa_device_changed", user)[0].payload["change"] == "deleted"
    svc = make_user("integration", "svc-shell", password=None)
    key, _raw = create_api_key(svc, name="k", scopes=["jobs:read"])
    key.scopes = ["jobs:read", "audit:read"]
    key.save()
    event = AuditEvent.objects.get(action="apikey.changed", subject=f"apikey:{key.prefix}")
    assert event.payload["fields"] == ["scopes"]
    user_id = user.pk
    user.delete()
    assert AuditEvent.objects.filter(action="account.deleted", subject=f"user:{user_id}").exists()


@pytest.mark.django_db
def test_admin_changes_carry_the_admin_as_actor(make_user):
    target = make_user("requester", "erin2")
    client = signed_in(staff_admin(make_user, "root2"))
    data = change_form_data(client, target, email="erin@example.org")
    assert client.post(f"/admin/auth/user/{target.pk}/change/", data).status_code == 302
    event = events("account.changed", target)[0]
    assert (
        event.actor_name == "root2"
        and event.payload["changed"]["email"]["new"] == "erin@example.org"
    )


@pytest.mark.django_db
def test_nobody_changes_their_own_roles(make_user):
    admin = staff_admin(make_user, "selfish")
    client = signed_in(admin)
    data = change_form_data(client, admin)
    data["groups"] = [*data["groups"], Group.objects.get(name="reviewer").pk]
    response = client.post(f"/admin/auth/user/{admin.pk}/change/", data)
    assert response.status_code == 200 and "cannot change your own roles" in str(
        response.context["adminform"].form.errors
    )
    assert not User.objects.get(pk=admin.pk).groups.filter(name="reviewer").exists()


@pytest.mark.django_db
def test_issuing_an_enrolment_code_is_audited_and_only_its_hash_is_kept(make_user):
    from editplatform.accounts.models import EnrolmentCode

    user = make_user("approver")
    code = issue_enrolment_code(user, by=make_user("admin"))
    stored = EnrolmentCode.objects.filter(user=user).values().get()
    assert all(code not in str(value) for value in stored.values())


@pytest.mark.django_db
def test_operator_issues_the_first_admins_enrolment_code(make_user, capsys):
    ann = staff_admin(make_user, "ann")
    call_command("enrolment_code", "ann")
    code = capsys.readouterr().out.strip().splitlines()[-1]
    client = Client()
    assert client.post("/login/", {"username": "ann", "password": PASSWORD}).status_code == 302
    assert client.post("/account/2fa/", {"enrolment_code": code}).status_code == 302
    client.get("/account/2fa/")
    assert (
        client.post("/account/2fa/", {"token": current_code(ann, confirmed=False)}).status_code
        == 302
    )
    assert client.get("/admin/auth/user/").status_code == 200
    assert events("account.enrolment_code_issued", ann)[0].actor_name == "system/shell"
