"""Django's `createsuperuser`, refused: superusers are made only by an audited operator command."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Refused in StyleLedger; use `create_operator_superuser USER --reason ...` (audited)."

    def add_arguments(self, parser):
        parser.add_argument("args", nargs="*")
        parser.add_argument("--username")
        parser.add_argument("--email")
        parser.add_argument("--noinput", "--no-input", action="store_true")

    def handle(self, *args, **options):
        raise CommandError(
            "createsuperuser is disabled: superusers bypass every role and are made only by an "
            "operator with "
            '`manage.py create_operator_superuser USERNAME --reason "..."`, which writes an audit '
            "event"
        )
