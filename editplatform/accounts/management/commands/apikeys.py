"""`manage.py apikeys create|list|revoke`: integration keys (shown once, stored hashed)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from editplatform.accounts.models import SCOPES, IntegrationKey
from editplatform.accounts.services import AccountError, create_api_key, revoke_api_key


class Command(BaseCommand):
    help = "Create, list or revoke integration API keys; each change is an audit event."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("--account", required=True, help="integration service account username")
        create.add_argument("--name", required=True)
        create.add_argument("--scopes", required=True, help=f"comma-separated: {', '.join(SCOPES)}")
        create.add_argument("--expires-days", type=int, default=None)
        create.add_argument(
            "--allow-ip", action="append", default=[], help="address or CIDR; repeatable"
        )
        create.add_argument("--jobs-per-hour", type=int, default=None)
        sub.add_parser("list")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("prefix")
        revoke.add_argument("--reason", default="")

    def handle(self, *args, **opts):
        action = opts["action"]
        if action == "list":
            for key in IntegrationKey.objects.select_related("service_account").order_by(
                "-created"
            ):
                state = "revoked" if key.revoked else ("expired" if key.has_expired else "active")
                self.stdout.write(
                    f"{key.prefix}  {key.name:<24} {key.service_account.username:<20} "
                    f"{','.join(key.scopes):<28} {state:<8} last used "
                    f"{key.last_used_at or 'never'}"
                )
            return
        if action == "revoke":
            try:
                key = IntegrationKey.objects.get(prefix=opts["prefix"])
            except IntegrationKey.DoesNotExist:
                raise CommandError(f"no API key with prefix {opts['prefix']!r}") from None
            self.stdout.write(
                "revoked" if revoke_api_key(key, reason=opts["reason"]) else "already revoked"
            )
            return
        User = get_user_model()
        try:
            account = User.objects.get(username=opts["account"])
        except User.DoesNotExist:
            raise CommandError(f"no user named {opts['account']!r}") from None
        expires = (
            timezone.now() + timedelta(days=opts["expires_days"]) if opts["expires_days"] else None
        )
        scopes = [s.strip() for s in opts["scopes"].split(",") if s.strip()]
        try:
            key, raw = create_api_key(
                account,
                name=opts["name"],
                scopes=scopes,
                expires_at=expires,
                allowed_networks=opts["allow_ip"],
                jobs_per_hour=opts["jobs_per_hour"],
            )
        except AccountError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"API key for {account.username} (shown once, stored only as a hash):")
        self.stdout.write(raw)
