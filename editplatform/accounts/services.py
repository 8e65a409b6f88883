"""Account operations that must leave an audit trail: roles and API keys.

Each runs in one transaction with its audit event, so a change without its event (or
an event without its change) can never commit.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from editplatform.accounts.actor import acting_as
from editplatform.accounts.models import IntegrationKey, validate_networks, validate_scopes
from editplatform.accounts.roles import INTEGRATION, ROLE_NAMES, ensure_groups, has_role

User = get_user_model()


class AccountError(ValueError):
    """A request about accounts that cannot be honoured; the message says why."""


def grant_role(user, role: str, *, by=None) -> bool:
    if role not in ROLE_NAMES:
        raise AccountError(f"unknown role {role!r}; roles are {', '.join(ROLE_NAMES)}")
    with transaction.atomic(), acting_as(by):
        group = ensure_groups()[role]
        if user.groups.filter(pk=group.pk).exists():
            return False
        user.groups.add(group)  # the m2m signal writes role.changed
    return True


def revoke_role(user, role: str, *, by=None) -> bool:
    if role not in ROLE_NAMES:
        raise AccountError(f"unknown role {role!r}; roles are {', '.join(ROLE_NAMES)}")
    with transaction.atomic(), acting_as(by):
        group = ensure_groups()[role]
        if not user.groups.filter(pk=group.pk).exists():
            return False
        user.groups.remove(group)
    return True


def create_api_key(
    service_account,
    *,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    allowed_networks: list[str] | None = None,
    jobs_per_hour: int | None = None,
    created_by=None,
) -> tuple[IntegrationKey, str]:
    """Create a key for an integration account; the raw key is returned once, never stored."""
    if not has_role(service_account, INTEGRATION):
        raise AccountError(f"{service_account.get_username()} is not an integration service account")
    try:
        validate_scopes(list(scopes))
        validate_networks(list(allowed_networks or []))
    except ValidationError as exc:
        raise AccountError("; ".join(exc.messages)) from None
    if jobs_per_hour is not None and jobs_per_hour < 1:
        raise AccountError("jobs_per_hour must be at least 1 (or empty for unlimited)")
    from audit.log import append_event
    from editplatform.accounts import audit_actions as actions

    with transaction.atomic():
        key, raw = IntegrationKey.objects.create_key(
            name=name[:50], service_account=service_account, scopes=sorted(set(scopes)),
            allowed_networks=list(allowed_networks or []), expiry_date=expires_at,
            jobs_per_hour=jobs_per_hour, created_by=created_by,
        )
        append_event(
            actions.APIKEY_CREATED, actor=created_by, actor_name=None if created_by else "system",
            subject=f"apikey:{key.prefix}",
            payload={"prefix": key.prefix, "name": key.name, "service_account": service_account.get_username(),
                     "scopes": key.scopes, "allowed_networks": key.allowed_networks,
                     "jobs_per_hour": jobs_per_hour, "expires": expires_at.isoformat() if expires_at else None},
        )
    return key, raw


def revoke_api_key(key: IntegrationKey, *, by=None, reason: str = "") -> bool:
    from audit.log import append_event
    from editplatform.accounts import audit_actions as actions

    with transaction.atomic():
        locked = IntegrationKey.objects.select_for_update().get(pk=key.pk)
        if locked.revoked:
            return False
        locked.revoked = True
        locked.save(update_fields=["revoked"])
        append_event(
            actions.APIKEY_REVOKED, actor=by, actor_name=None if by else "system",
            subject=f"apikey:{locked.prefix}",
            payload={"prefix": locked.prefix, "name": locked.name, "reason": reason},
        )
    key.revoked = True
    return True
