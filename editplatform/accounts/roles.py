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
REVIEWER = Role("reviewer", "Compliance reviewer", "Read-only access to all jobs, artifacts and the audit trail.")
INTEGRATION = Role("integration", "Integration", "A service account used only through API keys.")
ADMIN = Role("admin", "Administrator", "Users, roles and API keys; no bypass of approvals or the log.")

ROLES: tuple[Role, ...] = (REQUESTER, APPROVER, REVIEWER, INTEGRATION, ADMIN)
ROLE_NAMES = tuple(role.name for role in ROLES)


def ensure_groups() -> dict[str, Group]:
    return {role.name: Group.objects.get_or_create(name=role.name)[0] for role in ROLES}


def roles_of(user) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_styleledger_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLE_NAMES).values_list("name", flat=True))
        user._styleledger_roles = cached
    return cached


def has_role(user, role: Role | str) -> bool:
    name = role.name if isinstance(role, Role) else role
    return name in roles_of(user)
