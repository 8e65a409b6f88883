"""`manage.py provenance_ca`: generate the development C2PA chain into var/ (once).

Prints where the key, chain and root are; `--force` replaces an existing chain (every
output signed before then stops reading as Trusted under the new root). Refused in
production, where the operator's CA supplies C2PA_* files.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from editplatform.provenance import ca


class Command(BaseCommand):
    help = (
        "Generate the development C2PA root -> intermediate -> signer chain into "
        "PROVENANCE_DEV_CA_DIR."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="replace an existing chain")

    def handle(self, *args, force: bool = False, **options):
        if settings.PRODUCTION:
            raise CommandError(
                "production signs with the operator's CA (C2PA_SIGNING_KEY_FILE, "
                "C2PA_CERT_CHAIN_FILE, C2PA_TRUST_ANCHORS_FILE), never a generated one"
            )
        directory = Path(settings.PROVENANCE_DEV_CA_DIR)
        files = ca.generate_chain(directory) if force else ca.ensure_chain(directory)
        self.stdout.write(
            f"signing key: {files.key}\ncertificate chain: {files.chain}\ntrust anchor: "
            f"{files.root}"
        )
