"""`manage.py deploy_init --stage prepare|migrate`: what a fresh deployment needs once.

prepare (compose service `init`, before anything else; idempotent):
  * the audit signing key at AUDIT_SIGNING_KEY_FILE, generated when absent (0600);
  * a self-signed TLS certificate in TLS_CERT_DIR when the operator put none there;
  * the application's database role APP_DATABASE_ROLE (login, owns nothing);
  * the S3 bucket when STORAGE_BACKEND=s3.
migrate (compose service `migrate`, as the database owner):
  * the system checks (a missing signing key stops here: audit.E001/E002);
  * `migrate`, then the app role's grants (no UPDATE/DELETE/TRUNCATE on audit tables);
  * the first administrator when there is none; its password is printed once.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction


class Command(BaseCommand):
    help = (
        "Prepare a deployment (signing key, TLS cert, DB role, bucket) or migrate it (grants, "
        "first admin)."
    )
    requires_system_checks: list = []  # the key may not exist yet; `migrate` runs them itself

    def add_arguments(self, parser):
        parser.add_argument("--stage", choices=("prepare", "migrate"), required=True)

    def handle(self, *args, stage: str, **opts):
        if stage == "prepare":
            self._signing_key()
            self._artifact_kek()
            self._tls()
            self._c2pa()
            self._app_role()
            self._bucket()
        else:
            call_command("check", stdout=self.stdout, stderr=self.stderr)
            call_command("migrate", interactive=False, stdout=self.stdout, stderr=self.stderr)
            self._grants()
            self._first_admin()

    # --- prepare --------------------------------------------------------------------
    def _signing_key(self) -> None:
        from audit.checkpoint import Signer, load_signer

        if not settings.AUDIT_SIGNING_KEY_FILE:
            if settings.AUDIT_SIGNING_KEY:
                self.stdout.write("signing key: given in AUDIT_SIGNING_KEY")
                return
            raise CommandError(
                "set AUDIT_SIGNING_KEY_FILE: where the audit signing key is (or is to be made)"
            )
        path = Path(settings.AUDIT_SIGNING_KEY_FILE)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Signer.generate(settings.AUDIT_LOG_ORIGIN).private_pem())
            self.stdout.write(
                f"signing key: created {path} (keep an offline copy; it cannot be recovered)"
            )
        signer = load_signer(
            name=settings.AUDIT_LOG_ORIGIN, key_file=str(path), key_text=None, dev_key_path=None
        )
        self.stdout.write(f"signing key: verifier key {signer.verifier.vkey()}")

    def _artifact_kek(self) -> None:
        """The key-encryption key of stored artifacts (editplatform.core.crypto), if a file."""
        if not settings.ARTIFACT_KEK_FILE:
            return
        from editplatform.core.crypto import ensure_dev_kek

        ensure_dev_kek(Path(settings.ARTIFACT_KEK_FILE))
        self.stdout.write(f"artifact key-encryption key: {settings.ARTIFACT_KEK_FILE}")

    def _tls(self) -> None:
        if not settings.TLS_CERT_DIR:
            return
        from editplatform.monitoring.tls import ensure_self_signed

        if ensure_self_signed(Path(settings.TLS_CERT_DIR), settings.TLS_SERVER_NAME):
            self.stdout.write(
                f"tls: self-signed certificate for {settings.TLS_SERVER_NAME} in "
                f"{settings.TLS_CERT_DIR} (replace tls.crt/tls.key with your own to use a real "
                "one)"
            )

    def _c2pa(self) -> None:
        """A local C2PA chain (root -> intermediate -> signer) next to the configured files
        when the operator supplied none: released outputs are signed from the first job;
        replace the three files with the operator's CA to be trusted outside."""
        names = ("C2PA_SIGNING_KEY_FILE", "C2PA_CERT_CHAIN_FILE", "C2PA_TRUST_ANCHORS_FILE")
        paths = [getattr(settings, name, None) for name in names]
        if not all(paths) or any(Path(p).exists() for p in paths):
            return
        directory = Path(paths[0]).parent
        expected = [directory / "signer.key", directory / "chain.pem", directory / "root.pem"]
        if [Path(p) for p in paths] != expected:
            raise CommandError(
                "C2PA_* files are configured but absent; put the operator's signing key, "
                f"chain and trust anchors there, or name {', '.join(map(str, expected))} "
                "to have a local chain made"
            )
        call_command("provenance_ca", dir=str(directory))  # by name: provenance is a sibling app
        self.stdout.write(
            f"c2pa: local signing chain created in {directory} (replace signer.key, chain.pem "
            "and root.pem with your CA's to be trusted outside this deployment)"
        )

    def _app_role(self) -> None:
        if connection.vendor != "postgresql":
            return
        from editplatform.monitoring.dbroles import ensure_role

        if not settings.APP_DATABASE_PASSWORD:
            raise CommandError(
                "set APP_DATABASE_PASSWORD: the password of the application's database role"
            )
        with connection.cursor() as cursor:
            created = ensure_role(
                cursor, settings.APP_DATABASE_ROLE, settings.APP_DATABASE_PASSWORD
            )
        self.stdout.write(
            f"database role {settings.APP_DATABASE_ROLE}: {'created' if created else 'exists'}"
        )

    def _bucket(self) -> None:
        if settings.STORAGE_BACKEND != "s3":
            return
        from django.core.files.storage import default_storage

        client = default_storage.connection.meta.client
        bucket = default_storage.bucket_name
        try:
            client.create_bucket(Bucket=bucket)
            self.stdout.write(f"s3: created bucket {bucket}")
        except (client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists):
            self.stdout.write(f"s3: bucket {bucket} exists")

    # --- migrate --------------------------------------------------------------------
    def _grants(self) -> None:
        if connection.vendor != "postgresql":
            return
        from editplatform.monitoring.dbroles import grant_app_privileges

        with transaction.atomic(), connection.cursor() as cursor:
            grant_app_privileges(
                cursor, settings.APP_DATABASE_ROLE, connection.settings_dict["NAME"]
            )
        self.stdout.write(
            f"database role {settings.APP_DATABASE_ROLE}: granted (audit tables append-only)"
        )

    def _first_admin(self) -> None:
        # No superuser (issue 11): an account with the admin role, plus the one-time
        # code it needs to enrol its second factor; every step is an audit event.
        from django.contrib.auth import get_user_model

        from editplatform.accounts.recovery import issue_enrolment_code
        from editplatform.accounts.roles import ADMIN
        from editplatform.accounts.services import grant_role

        User = get_user_model()
        if User.objects.filter(groups__name=ADMIN.name).exists():
            return
        password = secrets.token_urlsafe(18)
        with transaction.atomic():
            user = User.objects.create_user(
                settings.FIRST_ADMIN_USERNAME, email="", password=password, is_staff=True
            )
            grant_role(user, ADMIN.name)
            code = issue_enrolment_code(user)
        self.stdout.write(
            f"first admin: {user.username} password: {password}\n"
            f"  2FA enrolment code: {code}\n"
            "  (shown once; sign in, enter the code, set up two-factor and change the password)"
        )
