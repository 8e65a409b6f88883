"""The log's signing key and origin, from settings (kept out of the database)."""

from __future__ import annotations

import functools
from pathlib import Path

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from audit.checkpoint import Signer, Verifier, load_signer

DEV_KEY_NAME = "audit_signing_key.pem"


def origin() -> str:
    return settings.AUDIT_LOG_ORIGIN


@functools.cache
def get_signer() -> Signer:
    dev_path = None if settings.PRODUCTION else Path(settings.VAR_DIR) / DEV_KEY_NAME
    return load_signer(
        name=origin(),
        key_file=settings.AUDIT_SIGNING_KEY_FILE,
        key_text=settings.AUDIT_SIGNING_KEY,
        dev_key_path=dev_path,
    )


def get_verifier() -> Verifier:
    return get_signer().verifier


@receiver(setting_changed)
def _forget_key(setting, **kwargs):
    if setting.startswith("AUDIT_") or setting in {"VAR_DIR", "PRODUCTION"}:
        get_signer.cache_clear()
