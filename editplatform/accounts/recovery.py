"""Account recovery with four eyes, 2FA resets and one-time enrolment codes.

The attack this closes: an administrator resets a reviewer's password and deletes
their TOTP device, signs in as them and enrols a new device. Now:

- a reset by anyone but the owner opens an `AccountRecovery`; while it is open the
  account's privileged roles are suspended (`roles_of` drops them, the permission
  backend grants nothing);
- a second administrator, neither the one who asked nor the owner, must confirm it;
- after a 2FA reset the owner must enrol again, which for a privileged role needs a
  one-time enrolment code issued by an administrator (itself an audit event).

Each step is an audit event in the transaction of the change.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from editplatform.accounts import audit_events as events
from editplatform.accounts.actor import acting_as, current_actor
from editplatform.accounts.models import AccountRecovery, EnrolmentCode
from editplatform.accounts.roles import (
    ADMIN,
    PRIVILEGED_ROLE_NAMES,
    forget_roles,
    has_role,
    held_roles,
)

ENROLMENT_CODE_TTL = timedelta(hours=72)


class RecoveryError(ValueError):
    """A recovery step that cannot be taken; the message says why."""


def record(action: str, *, subject: str, payload: dict, actor=None) -> None:
    """Append an account event with the acting person, or "system/shell" when none."""
    from audit.log import append_event

    actor = actor if actor is not None else current_actor()
    append_event(
        action,
        actor=actor,
        actor_name=None if actor is not None else "system/shell",
        subject=subject,
        payload=payload,
    )


def is_suspended(user) -> bool:
    cached = getattr(user, "_styleledger_suspended", None)
    if cached is None:
        cached = AccountRecovery.objects.filter(user_id=user.pk, completed_at__isnull=True).exists()
        user._styleledger_suspended = cached
    return cached


def suspended_user_ids():
    """Ids of accounts under an open recovery, as a subquery (e.g. to exclude their
    approvals: `.exclude(approver_id__in=suspended_user_ids())`)."""
    return AccountRecovery.objects.filter(completed_at__isnull=True).values("user_id")


def open_recovery(user, kind: str, *, by=None) -> AccountRecovery | None:
    """Open a recovery for a privileged account reset by someone else (no-op otherwise)."""
    if by is not None and by.pk == user.pk:
        return None
    if not held_roles(user) & PRIVILEGED_ROLE_NAMES:
        return None
    with transaction.atomic():
        recovery = AccountRecovery.objects.create(user=user, kind=kind, requested_by=by)
        record(
            events.ACCOUNT_RECOVERY_OPENED,
            actor=by,
            subject=f"user:{user.pk}",
            payload={
                "user": user.get_username(),
                "user_id": user.pk,
                "kind": kind,
                "recovery": recovery.pk,
                "suspended_roles": sorted(held_roles(user) & PRIVILEGED_ROLE_NAMES),
            },
        )
    forget_roles(user)
    return recovery


def confirm_recovery(recovery: AccountRecovery, *, by) -> AccountRecovery:
    """The second administrator's confirmation; refused for the requester and the owner."""
    if by is None or not getattr(by, "is_authenticated", False):
        raise RecoveryError("a recovery is confirmed by a signed-in administrator")
    if not has_role(by, ADMIN):
        raise RecoveryError("only an administrator may confirm an account recovery")
    with transaction.atomic():
        locked = AccountRecovery.objects.select_for_update().get(pk=recovery.pk)
        if locked.confirmed_at is not None:
            raise RecoveryError("this recovery is already confirmed")
        if locked.user_id == by.pk:
            raise RecoveryError("you cannot confirm the recovery of your own account")
        if locked.requested_by_id == by.pk:
            raise RecoveryError(
                "the administrator who reset the account cannot also confirm it "
                "(four eyes: a second administrator must)"
            )
        locked.confirmed_by, locked.confirmed_at = by, timezone.now()
        locked.save(update_fields=["confirmed_by", "confirmed_at"])
        record(
            events.ACCOUNT_RECOVERY_CONFIRMED,
            actor=by,
            subject=f"user:{locked.user_id}",
            payload={"recovery": locked.pk, "kind": locked.kind, "user_id": locked.user_id},
        )
        _complete_if_done(locked)
    return locked


def note_enrolment(user) -> None:
    """The owner enrolled a new device: satisfies the enrolment half of open 2FA recoveries."""
    now = timezone.now()
    with transaction.atomic():
        for recovery in AccountRecovery.objects.select_for_update().filter(
            user=user,
            kind=AccountRecovery.Kind.TWO_FACTOR,
            re_enrolled_at__isnull=True,
            completed_at__isnull=True,
        ):
            recovery.re_enrolled_at = now
            recovery.save(update_fields=["re_enrolled_at"])
            _complete_if_done(recovery)
    forget_roles(user)


def _complete_if_done(recovery: AccountRecovery) -> None:
    if recovery.confirmed_at is None or recovery.needs_enrolment:
        return
    recovery.completed_at = timezone.now()
    recovery.save(update_fields=["completed_at"])
    record(
        events.ACCOUNT_RECOVERY_COMPLETED,
        subject=f"user:{recovery.user_id}",
        payload={"recovery": recovery.pk, "kind": recovery.kind, "user_id": recovery.user_id},
    )


def reset_two_factor(user, *, by=None) -> int:
    """Remove the user's TOTP devices; they must enrol again (with an enrolment code)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    with transaction.atomic(), acting_as(by if by is not None else current_actor()):
        devices = list(TOTPDevice.objects.filter(user=user))
        for device in devices:
            device._reset_in_progress = True
            device.delete()
        record(
            events.USER_2FA_RESET,
            actor=by,
            subject=f"user:{user.pk}",
            payload={
                "user": user.get_username(),
                "user_id": user.pk,
                "devices_removed": len(devices),
            },
        )
        open_recovery(user, AccountRecovery.Kind.TWO_FACTOR, by=by)
    return len(devices)


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def issue_enrolment_code(user, *, by=None) -> str:
    """A fresh one-time code for the user's 2FA enrolment; returned once, stored hashed."""
    code = "-".join(secrets.token_hex(3) for _ in range(3))
    with transaction.atomic():
        EnrolmentCode.objects.filter(user=user, used_at__isnull=True).update(
            expires_at=timezone.now()
        )
        entry = EnrolmentCode.objects.create(
            user=user,
            code_sha256=_digest(code),
            issued_by=by,
            expires_at=timezone.now() + ENROLMENT_CODE_TTL,
        )
        record(
            events.ACCOUNT_ENROLMENT_CODE_ISSUED,
            actor=by,
            subject=f"user:{user.pk}",
            payload={
                "user": user.get_username(),
                "user_id": user.pk,
                "code_id": entry.pk,
                "expires": entry.expires_at.isoformat(),
            },
        )
    return code


def valid_enrolment_code(user, code: str) -> EnrolmentCode | None:
    return EnrolmentCode.objects.filter(
        user=user, code_sha256=_digest(code), used_at__isnull=True, expires_at__gt=timezone.now()
    ).first()


def needs_enrolment_code(user) -> bool:
    """Privileged roles enrol only with an admin-issued code, never the password alone."""
    return bool(held_roles(user) & PRIVILEGED_ROLE_NAMES)
