"""Create one demo account per role, once, with random passwords printed once.

Passwords are generated with `secrets`, stored only hashed (Django's password
hasher) and printed a single time; a second run finds the accounts and prints
nothing secret. Roles that require two-factor sign-in (approver, reviewer, admin)
also get a confirmed TOTP device whose secret is printed once, with its otpauth://
URI for an authenticator app. Used by `make run` on a fresh machine.
"""

from __future__ import annotations

import json
import secrets
from base64 import b32encode

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from editplatform.accounts.models import SCOPE_JOBS_READ, SCOPE_JOBS_WRITE
from editplatform.accounts.roles import INTEGRATION, ROLES, ensure_groups
from editplatform.accounts.services import create_api_key
from editplatform.accounts.two_factor import ROLES_REQUIRING_2FA


class Command(BaseCommand):
    help = (
        "Create one demo account per role when none exist; print their passwords (and keys) once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the new credentials as JSON")

    def handle(self, *args, **options):
        User = get_user_model()
        created: list[dict] = []
        with transaction.atomic():
            groups = ensure_groups()
            for role in ROLES:
                username = f"demo-{role.name}"
                if User.objects.filter(username=username).exists():
                    continue
                if role.name == INTEGRATION.name:
                    # A service account: no password at all, only an API key.
                    user = User.objects.create_user(username=username, password=None)
                    user.groups.add(groups[role.name])
                    _key, raw = create_api_key(
                        user, name="demo integration", scopes=[SCOPE_JOBS_READ, SCOPE_JOBS_WRITE]
                    )
                    created.append(
                        {"role": role.name, "username": username, "password": None, "api_key": raw}
                    )
                    continue
                password = secrets.token_urlsafe(12)
                user = User.objects.create_user(username=username, password=password)
                user.is_staff = role.name == "admin"
                user.save(update_fields=["is_staff"])
                user.groups.add(groups[role.name])
                row = {"role": role.name, "username": username, "password": password}
                if role.name in ROLES_REQUIRING_2FA:
                    device = TOTPDevice.objects.create(
                        user=user, name="demo authenticator", confirmed=True
                    )
                    row["totp_secret"] = b32encode(device.bin_key).decode()
                    row["totp_uri"] = device.config_url
                created.append(row)
        if options["json"]:
            self.stdout.write(json.dumps(created))
            return
        if not created:
            self.stdout.write(
                "Demo accounts already exist (passwords were printed when they were made)."
            )
            return
        self.stdout.write("Demo accounts (passwords shown once, stored only hashed):")
        for row in created:
            if row.get("api_key"):
                self.stdout.write(
                    f"  {row['role']:<12} {row['username']:<18} API key {row['api_key']}  "
                    "(jobs:read, jobs:write)"
                )
                continue
            totp = f"  TOTP secret {row['totp_secret']}" if "totp_secret" in row else ""
            self.stdout.write(f"  {row['role']:<12} {row['username']:<18} {row['password']}{totp}")
        if any("totp_uri" in row for row in created):
            self.stdout.write(
                "Approver, reviewer and admin sign in with a TOTP code; add these to an "
                "authenticator app:"
            )
            for row in created:
                if "totp_uri" in row:
                    self.stdout.write(f"  {row['totp_uri']}")
