from django.apps import AppConfig
from django.core import checks


class ProvenanceConfig(AppConfig):
    name = "editplatform.provenance"
    label = "provenance"
    verbose_name = "Provenance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from editplatform.celery import register_periodic
        from editplatform.jobs import release_hook
        from editplatform.provenance import audit_actions  # noqa: F401  (registers actions)
        from editplatform.provenance.release import mark_released

        checks.register(check_signing_files, "provenance")
        # Every released output is marked after its release commits; failures are swept.
        release_hook.register(mark_released)
        register_periodic(
            "provenance-mark-sweep", "provenance.mark_sweep", settings.PROVENANCE_SWEEP_SECONDS
        )


C2PA_FILES = ("C2PA_SIGNING_KEY_FILE", "C2PA_CERT_CHAIN_FILE", "C2PA_TRUST_ANCHORS_FILE")


def check_signing_files(app_configs=None, **kwargs):
    """Production signs with the operator's C2PA key and chain: refuse to start without them.

    (The development CA is never used in production; without this check the first
    release would fail to be marked instead of the deployment failing to start.)
    """
    from pathlib import Path

    from django.conf import settings

    if not getattr(settings, "PRODUCTION", False):
        return []
    errors = []
    missing = [name for name in C2PA_FILES if not getattr(settings, name, None)]
    if missing:
        errors.append(
            checks.Error(
                f"C2PA signing is not configured: {', '.join(missing)} unset",
                hint="set the operator's signing key, certificate chain and trust anchors "
                "(PEM files; docs/provenance.md)",
                id="provenance.E001",
            )
        )
    unreadable = [
        name
        for name in C2PA_FILES
        if getattr(settings, name, None) and not Path(getattr(settings, name)).is_file()
    ]
    if unreadable:
        errors.append(
            checks.Error(
                "C2PA files not found: "
                f"{', '.join(f'{n}={getattr(settings, n)}' for n in unreadable)}",
                id="provenance.E002",
            )
        )
    return errors
