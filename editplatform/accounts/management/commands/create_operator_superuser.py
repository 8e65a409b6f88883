"""`manage.py create_operator_superuser USER --reason TEXT`: the operator's break-glass.

The running product has no superusers: the admin role manages people, roles and keys
only. An operator with shell access to the machine may still need one (a broken role
table, say); this command makes (or promotes) one and writes
`account.superuser_created` with the reason and the OS user, in one transaction.
"""

from __future__ import annotations

import getpass
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from editplatform.accounts import audit_events as events
from editplatform.accounts.account_signals import operator_superuser
from editplatform.accounts.recovery import record


class Command(BaseCommand):
    help = "Create or promote a superuser (operator break-glass); audited with the reason."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--reason", required=True, help="why a superuser is needed (kept in the audit log)"
        )

    def handle(self, *args, **opts):
        reason = opts["reason"].strip()
        if len(reason) < 10:
            raise CommandError("--reason must say why (at least 10 characters)")
        User = get_user_model()
        password = None
        with transaction.atomic(), operator_superuser(reason):
            user = User.objects.filter(username=opts["username"]).first()
            created = user is None
            if created:
                password = secrets.token_urlsafe(18)
                user = User.objects.create_user(opts["username"], password=password)
            user.is_superuser = True
            user.is_staff = True
            user.save(update_fields=["is_superuser", "is_staff"])
            record(
                events.ACCOUNT_SUPERUSER_CREATED,
                subject=f"user:{user.pk}",
                payload={
                    "user": user.get_username(),
                    "user_id": user.pk,
                    "created": created,
                    "reason": reason[:500],
                    "os_user": _os_user(),
                },
            )
        self.stdout.write(f"{user.username} is now a superuser (audited).")
        if password:
            self.stdout.write(f"Password (shown once): {password}")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"
