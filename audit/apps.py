"""The audit app: the periodic checkpoint and the start-up check of the signing key."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class AuditConfig(AppConfig):
    name = "audit"
    label = "audit"
    verbose_name = "Audit log"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        checks.register(check_signing_key, "audit")
        self._register_beat()

    @staticmethod
    def _register_beat() -> None:
        from django.conf import settings

        from editplatform.celery import register_periodic

        register_periodic("audit-checkpoint", "audit.checkpoint", settings.AUDIT_CHECKPOINT_SECONDS)


def check_signing_key(app_configs=None, **kwargs):
    """Production needs a signing key from outside the database; refuse to start without."""
    from django.conf import settings

    from audit import checkpoint
    from audit.signing import get_signer

    errors = []
    if getattr(settings, "PRODUCTION", False) and not (
        settings.AUDIT_SIGNING_KEY_FILE or settings.AUDIT_SIGNING_KEY
    ):
        errors.append(
            checks.Error(
                "no audit signing key",
                hint="set AUDIT_SIGNING_KEY_FILE (a PEM Ed25519 private key) or AUDIT_SIGNING_KEY",
                id="audit.E001",
            )
        )
    elif settings.AUDIT_SIGNING_KEY_FILE or settings.AUDIT_SIGNING_KEY:
        try:
            get_signer()
        except checkpoint.CheckpointError as exc:
            errors.append(checks.Error(f"audit signing key unusable: {exc}", id="audit.E002"))
    return errors
