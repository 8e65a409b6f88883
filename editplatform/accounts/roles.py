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


# Django model permissions per role. Object-level rules for jobs and approvals live in
# their querysets and services, not here: the admin role manages people and keys, and
# gets no permission on jobs or the log. Reading the audit trail is the permission
# `audit.view_auditevent` (the audit app names no roles).
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    REVIEWER.name: ("audit.view_auditevent", "provenance.check_provenance"),
    ADMIN.name: (
        "auth.view_user", "auth.add_user", "auth.change_user",
        "auth.view_group",
        "accounts.view_integrationkey", "accounts.add_integrationkey", "accounts.change_integrationkey",
        "axes.view_accessattempt", "axes.delete_accessattempt",
        "otp_totp.view_totpdevice", "otp_totp.delete_totpdevice",
    ),
}


def ensure_groups() -> dict[str, Group]:
    """Create the role groups (idempotent) and give them their model permissions."""
    from django.contrib.auth.models import Permission

    groups = {role.name: Group.objects.get_or_create(name=role.name)[0] for role in ROLES}
    for role_name, codes in ROLE_PERMISSIONS.items():
        wanted = []
        for code in codes:
            app_label, codename = code.split(".")
            wanted.extend(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
        group = groups[role_name]
        if set(group.permissions.all()) != set(wanted):
            group.permissions.set(wanted)
    return groups


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
