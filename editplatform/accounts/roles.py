"""The platform's roles, kept as Django groups.

A role is a group with a fixed name; permissions and object-level rules are attached
to these names elsewhere (jobs, approvals, audit). Keeping the list in one place lets
the demo bootstrap, the admin and the permission checks agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group


@dataclass(frozen=True)
class Role:
    name: str
    title: str
    description: str


REQUESTER = Role("requester", "Requester", "Staff: submit edit jobs, see and cancel their own.")
APPROVER = Role("approver", "Approver", "Approve or reject other people's sensitive edits.")
REVIEWER = Role(
    "reviewer",
    "Compliance reviewer",
    "Read-only access to all jobs, artifacts and the audit trail.",
)
INTEGRATION = Role("integration", "Integration", "A service account used only through API keys.")
ADMIN = Role(
    "admin", "Administrator", "Users, roles and API keys; no bypass of approvals or the log."
)

ROLES: tuple[Role, ...] = (REQUESTER, APPROVER, REVIEWER, INTEGRATION, ADMIN)
ROLE_NAMES = tuple(role.name for role in ROLES)


# Django model permissions per role. Object-level rules for jobs and approvals live in
# their querysets and services, not here: the admin role manages people and keys, and
# gets no permission on jobs or the log. Reading the audit trail is the permission
# `audit.view_auditevent` (the audit app names no roles).
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    REVIEWER.name: ("audit.view_auditevent", "provenance.check_provenance"),
    ADMIN.name: (
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
        "accounts.view_integrationkey",
        "accounts.add_integrationkey",
        "accounts.change_integrationkey",
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
        # Deleting a device is a 2FA reset (accounts.admin): audited, four-eyes recovery.
        "otp_totp.view_totpdevice",
        "otp_totp.delete_totpdevice",
        "accounts.view_accountrecovery",
        "accounts.change_accountrecovery",
        # Read-only in the admin; state changes go through the four-eyes services.
        "models_registry.view_modelversion",
    ),
}


def ensure_groups() -> dict[str, Group]:
    """Create the role groups (idempotent) and give them their model permissions."""
    from django.contrib.auth.models import Permission

    from editplatform.accounts.account_signals import role_table_sync

    with role_table_sync():
        return _ensure_groups(Permission)


def _ensure_groups(Permission) -> dict[str, Group]:
    groups = {role.name: Group.objects.get_or_create(name=role.name)[0] for role in ROLES}
    for role_name, codes in ROLE_PERMISSIONS.items():
        wanted = []
        for code in codes:
            app_label, codename = code.split(".")
            wanted.extend(
                Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )
        group = groups[role_name]
        if set(group.permissions.all()) != set(wanted):
            group.permissions.set(wanted)
    return groups


PRIVILEGED_ROLE_NAMES = frozenset({APPROVER.name, REVIEWER.name, ADMIN.name})
HUMAN_ROLE_NAMES = frozenset(ROLE_NAMES) - {INTEGRATION.name}


def held_roles(user) -> set[str]:
    """The role groups the account is a member of, whatever its recovery state."""
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_styleledger_held_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLE_NAMES).values_list("name", flat=True))
        user._styleledger_held_roles = cached
    return cached


def roles_of(user) -> set[str]:
    """The roles the account may act in now.

    An account under an open recovery (someone else reset its password or second
    factor) loses its privileged roles until a second admin confirms the recovery and
    the owner has re-enrolled: every `has_role` check (approvals, audit, jobs) sees that.
    """
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_styleledger_roles", None)
    if cached is None:
        cached = set(held_roles(user))
        if cached & PRIVILEGED_ROLE_NAMES:
            from editplatform.accounts.recovery import is_suspended

            if is_suspended(user):
                cached -= PRIVILEGED_ROLE_NAMES
        user._styleledger_roles = cached
    return cached


def forget_roles(user) -> None:
    """Drop the per-object role caches (after a change of groups or recovery state)."""
    for name in ("_styleledger_roles", "_styleledger_held_roles", "_styleledger_suspended"):
        user.__dict__.pop(name, None)


def may_act_as(user, role: Role | str) -> bool:
    """Whether the user may act in the role now (held and not suspended by a recovery)."""
    return has_role(user, role)


def has_role(user, role: Role | str) -> bool:
    name = role.name if isinstance(role, Role) else role
    return name in roles_of(user)
