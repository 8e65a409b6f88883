"""Every change to an account, a credential, a 2FA device, a group or a permission is
an audit event — whichever path made it: the admin, a command, or a shell through the
ORM. Model signals are the one place all of those pass.

The actor is the signed-in person (CurrentActorMiddleware / `acting_as`), or
"system/shell" when there is none. Also here: the superuser guard (only
`create_operator_superuser` may make one) and the opening of an account recovery when
someone other than the owner sets a privileged account's password.
"""

from __future__ import annotations

import contextlib
import contextvars

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver
from django_otp.plugins.otp_totp.models import TOTPDevice

from editplatform.accounts import audit_events as events
from editplatform.accounts.actor import current_actor
from editplatform.accounts.models import AccountRecovery, IntegrationKey
from editplatform.accounts.recovery import open_recovery, record

User = get_user_model()

_USER_FIELDS = (
    "username",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "is_staff",
    "is_superuser",
)
_KEY_FIELDS = (
    "name",
    "service_account_id",
    "scopes",
    "allowed_networks",
    "jobs_per_hour",
    "expiry_date",
    "revoked",
    "hashed_key",
    "prefix",
)
_operator: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "styleledger_operator", default=None
)
_role_sync: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "styleledger_role_sync", default=False
)
_service: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "styleledger_key_service", default=False
)


class SuperuserRefused(PermissionError):
    """A superuser may only be made by `manage.py create_operator_superuser --reason`."""


@contextlib.contextmanager
def operator_superuser(reason: str):
    """The one context in which an account may become a superuser (the operator command)."""
    token = _operator.set(reason)
    try:
        yield
    finally:
        _operator.reset(token)


@contextlib.contextmanager
def role_table_sync():
    """`ensure_groups` makes the role groups match the code: not an account change."""
    token = _role_sync.set(True)
    try:
        yield
    finally:
        _role_sync.reset(token)


@contextlib.contextmanager
def key_service():
    """The key services write their own richer events; the row signals stay quiet."""
    token = _service.set(True)
    try:
        yield
    finally:
        _service.reset(token)


def _user_subject(user_id) -> str:
    return f"user:{user_id}"


# --- users -------------------------------------------------------------------------


@receiver(pre_save, sender=User, dispatch_uid="accounts.user_pre_save")
def remember_user(sender, instance, raw=False, **kwargs):
    old = None
    if instance.pk is not None:
        old = sender.objects.filter(pk=instance.pk).values(*_USER_FIELDS, "password").first()
    instance._styleledger_old = old
    was_superuser = bool(old and old["is_superuser"])
    if instance.is_superuser and not was_superuser and _operator.get() is None:
        raise SuperuserRefused(
            "superusers cannot be made here; an operator runs "
            "`manage.py create_operator_superuser USER --reason ...` (audited)"
        )


@receiver(post_save, sender=User, dispatch_uid="accounts.user_post_save")
def record_user_change(sender, instance, created, raw=False, **kwargs):
    old = getattr(instance, "_styleledger_old", None)
    actor = current_actor()
    name = instance.get_username()
    if created or old is None:
        record(
            events.ACCOUNT_CREATED,
            subject=_user_subject(instance.pk),
            payload={
                "user": name,
                "user_id": instance.pk,
                "has_password": instance.has_usable_password(),
                **{f: getattr(instance, f) for f in ("is_active", "is_staff", "is_superuser")},
            },
        )
        return
    changed = {
        f: {"old": old[f], "new": getattr(instance, f)}
        for f in _USER_FIELDS
        if old[f] != getattr(instance, f)
    }
    if changed:
        record(
            events.ACCOUNT_CHANGED,
            subject=_user_subject(instance.pk),
            payload={"user": name, "user_id": instance.pk, "changed": changed},
        )
    if old["password"] != instance.password:
        by_owner = actor is not None and actor.pk == instance.pk
        record(
            events.ACCOUNT_PASSWORD_CHANGED,
            subject=_user_subject(instance.pk),
            payload={
                "user": name,
                "user_id": instance.pk,
                "by_owner": by_owner,
                "usable": instance.has_usable_password(),
            },
        )
        if not by_owner:
            open_recovery(instance, AccountRecovery.Kind.PASSWORD, by=actor)
    instance._styleledger_old = {f: getattr(instance, f) for f in (*_USER_FIELDS, "password")}


@receiver(post_delete, sender=User, dispatch_uid="accounts.user_post_delete")
def record_user_delete(sender, instance, **kwargs):
    record(
        events.ACCOUNT_DELETED,
        subject=_user_subject(instance.pk),
        payload={"user": instance.get_username(), "user_id": instance.pk},
    )


def _permission_codes(pk_set) -> list[str]:
    return sorted(
        f"{app}.{code}"
        for app, code in Permission.objects.filter(pk__in=pk_set or ()).values_list(
            "content_type__app_label", "codename"
        )
    )


@receiver(
    m2m_changed, sender=User.user_permissions.through, dispatch_uid="accounts.user_permissions"
)
def record_user_permissions(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if reverse:  # permission.user_set.add(...)
        users = (
            list(User.objects.filter(pk__in=pk_set or ()))
            if action != "pre_clear"
            else list(instance.user_set.all())
        )
        codes = _permission_codes([instance.pk])
    else:
        users = [instance]
        codes = (
            _permission_codes(instance.user_permissions.values_list("pk", flat=True))
            if action == "pre_clear"
            else _permission_codes(pk_set)
        )
    if not codes:
        return
    verb = "added" if action == "post_add" else "removed"
    for user in users:
        record(
            events.ACCOUNT_PERMISSIONS_CHANGED,
            subject=_user_subject(user.pk),
            payload={"user": user.get_username(), "user_id": user.pk, verb: codes},
        )


# --- groups ----------------------------------------------------------------------


@receiver(post_save, sender=Group, dispatch_uid="accounts.group_post_save")
def record_group_save(sender, instance, created, **kwargs):
    if _role_sync.get():
        return
    record(
        events.GROUP_CHANGED,
        subject=f"group:{instance.pk}",
        payload={"group": instance.name, "change": "created" if created else "saved"},
    )


@receiver(post_delete, sender=Group, dispatch_uid="accounts.group_post_delete")
def record_group_delete(sender, instance, **kwargs):
    record(
        events.GROUP_CHANGED,
        subject=f"group:{instance.pk}",
        payload={"group": instance.name, "change": "deleted"},
    )


@receiver(m2m_changed, sender=Group.permissions.through, dispatch_uid="accounts.group_permissions")
def record_group_permissions(sender, instance, action, reverse, pk_set, **kwargs):
    if _role_sync.get():
        return
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if reverse:
        groups = (
            list(Group.objects.filter(pk__in=pk_set or ()))
            if action != "pre_clear"
            else list(instance.group_set.all())
        )
        codes = _permission_codes([instance.pk])
    else:
        groups = [instance]
        codes = (
            _permission_codes(instance.permissions.values_list("pk", flat=True))
            if action == "pre_clear"
            else _permission_codes(pk_set)
        )
    if not codes:
        return
    verb = "permissions_added" if action == "post_add" else "permissions_removed"
    for group in groups:
        record(
            events.GROUP_CHANGED,
            subject=f"group:{group.pk}",
            payload={"group": group.name, verb: codes},
        )


# --- TOTP devices ------------------------------------------------------------------


@receiver(pre_save, sender=TOTPDevice, dispatch_uid="accounts.totp_pre_save")
def remember_device(sender, instance, **kwargs):
    instance._styleledger_old = (
        sender.objects.filter(pk=instance.pk).values("confirmed", "key", "user_id").first()
        if instance.pk
        else None
    )


@receiver(post_save, sender=TOTPDevice, dispatch_uid="accounts.totp_post_save")
def record_device_save(sender, instance, created, **kwargs):
    # Throttling and drift fields change at every verification: not account changes.
    old = getattr(instance, "_styleledger_old", None)
    payload = {"user_id": instance.user_id, "device": instance.persistent_id}
    if instance.confirmed and (old is None or not old["confirmed"]):
        record(events.USER_2FA_ENROLLED, subject=_user_subject(instance.user_id), payload=payload)
        from editplatform.accounts.recovery import note_enrolment

        note_enrolment(instance.user)
        return
    if (
        old is not None
        and old["confirmed"]
        and (
            old["key"] != instance.key
            or old["user_id"] != instance.user_id
            or not instance.confirmed
        )
    ):
        record(
            events.USER_2FA_DEVICE_CHANGED,
            subject=_user_subject(instance.user_id),
            payload={**payload, "change": "changed"},
        )


@receiver(post_delete, sender=TOTPDevice, dispatch_uid="accounts.totp_post_delete")
def record_device_delete(sender, instance, **kwargs):
    if getattr(instance, "_reset_in_progress", False) or not instance.confirmed:
        return  # the reset service writes user.2fa_reset; unconfirmed devices are enrolment scratch
    record(
        events.USER_2FA_DEVICE_CHANGED,
        subject=_user_subject(instance.user_id),
        payload={
            "user_id": instance.user_id,
            "device": instance.persistent_id,
            "change": "deleted",
        },
    )
    actor = current_actor()
    if actor is None or actor.pk != instance.user_id:
        open_recovery(instance.user, AccountRecovery.Kind.TWO_FACTOR, by=actor)


# --- API keys ---------------------------------------------------------------------


@receiver(pre_save, sender=IntegrationKey, dispatch_uid="accounts.key_pre_save")
def remember_key(sender, instance, **kwargs):
    instance._styleledger_old = (
        sender.objects.filter(pk=instance.pk).values(*_KEY_FIELDS).first() if instance.pk else None
    )


@receiver(post_save, sender=IntegrationKey, dispatch_uid="accounts.key_post_save")
def record_key_save(sender, instance, created, **kwargs):
    if _service.get():
        return
    old = getattr(instance, "_styleledger_old", None)
    if old is None:
        change = {"created": True}
    else:
        change = {f: True for f in _KEY_FIELDS if old[f] != getattr(instance, f)}
        if not change:
            return
    record(
        events.APIKEY_CHANGED,
        subject=f"apikey:{instance.prefix}",
        payload={
            "prefix": instance.prefix,
            "fields": sorted(change),
            "service_account_id": instance.service_account_id,
        },
    )


@receiver(post_delete, sender=IntegrationKey, dispatch_uid="accounts.key_post_delete")
def record_key_delete(sender, instance, **kwargs):
    record(
        events.APIKEY_CHANGED,
        subject=f"apikey:{instance.prefix}",
        payload={"prefix": instance.prefix, "fields": ["deleted"]},
    )
