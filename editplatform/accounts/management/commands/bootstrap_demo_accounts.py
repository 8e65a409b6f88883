"""Create one demo account per role, once, with random passwords printed once.

Passwords are generated with `secrets`, stored only hashed (Django's password
hasher) and printed a single time; a second run finds the accounts and prints
nothing secret. Used by `make run` on a fresh machine.
"""

from __future__ import annotations

import json
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from editplatform.accounts.roles import ROLES, ensure_groups


class Command(BaseCommand):
    help = "Create one demo account per role when none exist; print their passwords once."

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
                password = secrets.token_urlsafe(12)
                user = User.objects.create_user(username=username, password=password)
                user.is_staff = role.name == "admin"
                user.save(update_fields=["is_staff"])
                user.groups.add(groups[role.name])
                created.append({"role": role.name, "username": username, "password": password})
        if options["json"]:
            self.stdout.write(json.dumps(created))
            return
        if not created:
            self.stdout.write("Demo accounts already exist (passwords were printed when they were made).")
            return
        self.stdout.write("Demo accounts (passwords shown once, stored only hashed):")
        for row in created:
            self.stdout.write(f"  {row['role']:<12} {row['username']:<18} {row['password']}")
