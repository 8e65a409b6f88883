"""Account operations that must leave an audit trail: roles and API keys.

Each runs in one transaction with its audit event, so a change without its event (or
an event without its change) can never commit.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from editplatform.accounts.actor import acting_as, current_actor
from editplatform.accounts.models import IntegrationKey, validate_networks, validate_scopes
from editplatform.accounts.roles import (
    HUMAN_ROLE_NAMES,
    INTEGRATION,
    ROLE_NAMES,
    ensure_groups,
    held_roles,
)

User = get_user_model()


class AccountError(ValueError):
    """A request about accounts that cannot be honoured; the message says why."""


def check_roles(user, roles: set[str] | frozenset[str], *, by=None) -> None:
    """Refuse a set of roles the account may not hold, or a change nobody may make.

    - integration accounts are integration-only: no human role beside `integration`,
      and an account that has API keys never gets a human role;
    - nobody changes their own roles (an admin granting themselves reviewer would read
      the audit trail on their own say-so).
    """
    roles = set(roles)
    name = user.get_username()
    human = sorted(roles & HUMAN_ROLE_NAMES)
    if INTEGRATION.name in roles and human:
        raise AccountError(
            f"{name}: integration accounts are integration-only; they cannot also hold "
            f"{', '.join(human)} (use a separate personal account)"
        )
    if (
        human
        and user.pk is not None
        and IntegrationKey.objects.filter(service_account_id=user.pk).exists()
    ):
        raise AccountError(
            f"{name} has integration API keys; a service account cannot hold {', '.join(human)}"
        )
    if by is not None and user.pk is not None and by.pk == user.pk and roles != held_roles(user):
        raise AccountError("you cannot change your own roles; another administrator must")


def grant_role(user, role: str, *, by=None) -> bool:
    if role not in ROLE_NAMES:
        raise AccountError(f"unknown role {role!r}; roles are {', '.join(ROLE_NAMES)}")
    check_roles(user, held_roles(user) | {role}, by=by)
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


def check_key_account(account) -> None:
    """API keys belong to integration service accounts only, never to people."""
    roles = held_roles(account)
    if INTEGRATION.name not in roles:
        raise AccountError(
            f"{account.get_username()} is not an integration service account: API keys are only "
            "for accounts with the integration role (people sign in with a password and 2FA)"
        )
    human = sorted(roles & HUMAN_ROLE_NAMES)
    if human:
        raise AccountError(
            f"{account.get_username()} also holds {', '.join(human)}: "
            "a key for it would carry human powers without a second factor"
        )


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
    check_key_account(service_account)
    try:
        validate_scopes(list(scopes))
        validate_networks(list(allowed_networks or []))
    except ValidationError as exc:
        raise AccountError("; ".join(exc.messages)) from None
    if jobs_per_hour is not None and jobs_per_hour < 1:
        raise AccountError("jobs_per_hour must be at least 1 (or empty for unlimited)")
    from audit.log import append_event
    from editplatform.accounts import audit_actions as actions
    from editplatform.accounts.account_signals import key_service

    with transaction.atomic(), key_service():
        key, raw = IntegrationKey.objects.create_key(
            name=name[:50],
            service_account=service_account,
            scopes=sorted(set(scopes)),
            allowed_networks=list(allowed_networks or []),
            expiry_date=expires_at,
            jobs_per_hour=jobs_per_hour,
            created_by=created_by,
        )
        append_event(
            actions.APIKEY_CREATED,
            actor=created_by or current_actor(),
            actor_name=None if (created_by or current_actor()) else "system/shell",
            subject=f"apikey:{key.prefix}",
            payload={
                "prefix": key.prefix,
                "name": key.name,
                "service_account": service_account.get_username(),
                "scopes": key.scopes,
                "allowed_networks": key.allowed_networks,
                "jobs_per_hour": jobs_per_hour,
                "expires": expires_at.isoformat() if expires_at else None,
            },
        )
    return key, raw


def revoke_api_key(key: IntegrationKey, *, by=None, reason: str = "") -> bool:
    from audit.log import append_event
    from editplatform.accounts import audit_actions as actions
    from editplatform.accounts.account_signals import key_service

    with transaction.atomic(), key_service():
        locked = IntegrationKey.objects.select_for_update().get(pk=key.pk)
        if locked.revoked:
            return False
        locked.revoked = True
        locked.save(update_fields=["revoked"])
        append_event(
            actions.APIKEY_REVOKED,
            actor=by or current_actor(),
            actor_name=None if (by or current_actor()) else "system/shell",
            subject=f"apikey:{locked.prefix}",
            payload={"prefix": locked.prefix, "name": locked.name, "reason": reason},
        )
    key.revoked = True
    return True
