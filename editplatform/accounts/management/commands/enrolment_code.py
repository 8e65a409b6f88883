"""`manage.py enrolment_code USER`: the operator issues a one-time 2FA enrolment code.

The admin page does the same for administrators; this is how the first admin of a new
installation enrols (there is no admin yet to issue one). Audited as
`account.enrolment_code_issued` with the actor "system/shell".
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from editplatform.accounts.recovery import issue_enrolment_code


class Command(BaseCommand):
    help = "Issue a one-time 2FA enrolment code for a user (shown once, audited)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, **opts):
        User = get_user_model()
        try:
            user = User.objects.get(username=opts["username"])
        except User.DoesNotExist:
            raise CommandError(f"no user named {opts['username']!r}") from None
        code = issue_enrolment_code(user)
        self.stdout.write(
            f"Enrolment code for {user.username} (shown once, valid 72 hours, single use):"
        )
        self.stdout.write(code)
