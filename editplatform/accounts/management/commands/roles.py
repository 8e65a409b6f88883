"""`manage.py roles list|grant|revoke`: assign roles outside the admin (audited)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from editplatform.accounts.roles import ROLE_NAMES, roles_of
from editplatform.accounts.services import AccountError, grant_role, revoke_role


class Command(BaseCommand):
    help = "List, grant or revoke roles; every change is written to the audit log."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="users and their roles")
        for name in ("grant", "revoke"):
            p = sub.add_parser(name)
            p.add_argument("username")
            p.add_argument("role", choices=ROLE_NAMES)

    def handle(self, *args, **opts):
        User = get_user_model()
        if opts["action"] == "list":
            for user in User.objects.order_by("username").prefetch_related("groups"):
                self.stdout.write(f"{user.username:<24} {', '.join(sorted(roles_of(user))) or '-'}")
            return
        try:
            user = User.objects.get(username=opts["username"])
        except User.DoesNotExist:
            raise CommandError(f"no user named {opts['username']!r}") from None
        change = grant_role if opts["action"] == "grant" else revoke_role
        try:
            changed = change(user, opts["role"])
        except AccountError as exc:
            raise CommandError(str(exc)) from None
        verb = "granted" if opts["action"] == "grant" else "revoked"
        self.stdout.write(f"{opts['role']} {verb} for {user.username}" if changed else "no change")
