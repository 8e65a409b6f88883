"""Every change of someone's roles is an audit event (`role.changed`).

Hooked on the m2m_changed signal of User.groups, so the admin, the `roles` command
and the shell are all covered by one path. The event joins the transaction of the
change (the admin and the command both run inside one).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from editplatform.accounts.actor import current_actor
from editplatform.accounts.roles import ROLE_NAMES, forget_roles, held_roles

User = get_user_model()


def _record(user, added: list[str], removed: list[str]) -> None:
    if not added and not removed:
        return
    from audit.log import append_event
    from editplatform.accounts import audit_actions as actions

    actor = current_actor()
    append_event(
        actions.ROLE_CHANGED,
        actor=actor,
        actor_name=None if actor is not None else "system/shell",
        subject=f"user:{user.pk}",
        payload={
            "user": user.get_username(),
            "user_id": user.pk,
            "added": sorted(added),
            "removed": sorted(removed),
        },
    )


def _guard(user, adding: set[str]) -> None:
    from editplatform.accounts.services import check_roles

    if adding:
        check_roles(user, held_roles(user) | adding, by=current_actor())


@receiver(m2m_changed, sender=User.groups.through)
def record_role_change(sender, instance, action, reverse, pk_set, **kwargs):
    if action == "pre_add":
        # The same rules as the admin form and the command, for every other path (shell).
        if reverse:
            if instance.name in ROLE_NAMES:
                for user in User.objects.filter(pk__in=pk_set or ()):
                    _guard(user, {instance.name})
        else:
            _guard(
                instance,
                set(
                    Group.objects.filter(pk__in=pk_set or (), name__in=ROLE_NAMES).values_list(
                        "name", flat=True
                    )
                ),
            )
        return
    if action == "pre_clear":
        if reverse:
            instance._cleared_role_members = (
                list(instance.user_set.all()) if instance.name in ROLE_NAMES else []
            )
        else:
            instance._cleared_roles = list(
                instance.groups.filter(name__in=ROLE_NAMES).values_list("name", flat=True)
            )
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if reverse:
        # group.user_set.add(...): instance is the Group, pk_set the users.
        group: Group = instance
        if group.name not in ROLE_NAMES:
            return
        if action == "post_clear":
            users = getattr(group, "_cleared_role_members", [])
        else:
            users = list(User.objects.filter(pk__in=pk_set or ()))
        for user in users:
            forget_roles(user)
            change = [group.name]
            _record(
                user, change if action == "post_add" else [], change if action != "post_add" else []
            )
        return
    user = instance
    forget_roles(user)
    if action == "post_clear":
        _record(user, [], getattr(user, "_cleared_roles", []))
        return
    names = list(
        Group.objects.filter(pk__in=pk_set or (), name__in=ROLE_NAMES).values_list(
            "name", flat=True
        )
    )
    _record(user, names if action == "post_add" else [], names if action == "post_remove" else [])
