"""Catalog extension through the registry: fit a new edit for a registered version and
register the result as a new version (its child), never changing the registered one.

The fitting and measuring is inversion's (:mod:`inversion.catalog_extend`); this module
checks who asks, writes the child next to the registry's store, and registers it like any
bundle (hash verification, model card, ``model.registered`` event naming the parent).
Activating the child is the usual four-eyes step.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from editplatform.accounts.roles import ADMIN, has_role
from editplatform.core.errors import DomainError
from editplatform.models_registry import services, store
from editplatform.models_registry.models import ModelVersion
from inversion.catalog_extend import extend_catalog as fit_and_write
from inversion.errors import InversionError


def extend_catalog(
    parent: ModelVersion,
    *,
    folder: Path,
    edit_name: str,
    user,
    description: str = "",
    strength: float | None = None,
    holdout: float = 0.25,
    seed: int = 0,
    classifier: Path | None = None,
    mark_sensitive: str = "",
    out: Path | None = None,
) -> ModelVersion:
    """Fit ``edit_name`` from ``folder`` on ``parent`` and register the child version."""
    if not has_role(user, ADMIN):
        raise DomainError("only admins may extend a model's catalog", "permission_denied", 403)
    if parent.state == ModelVersion.State.RETIRED:
        raise DomainError("a retired version cannot be extended", "conflict", status=409)
    scratch = Path(tempfile.mkdtemp(prefix=".extend-", dir=store.root()))
    target = out or scratch / "child"
    try:
        try:
            fit_and_write(
                parent.path,
                folder,
                target,
                name=edit_name,
                description=description,
                strength=strength,
                holdout=holdout,
                seed=seed,
                classifier_path=classifier,
                mark_sensitive=mark_sensitive,
                command=(
                    f"manage.py models extend-catalog {parent.version[:12]} --folder {folder} "
                    f"--name {edit_name} --seed {seed} --holdout {holdout}"
                    + (f" --strength {strength}" if strength is not None else "")
                    + (f" --classifier {classifier}" if classifier else "")
                ),
            )
        except InversionError as exc:
            raise DomainError(str(exc), "invalid_folder", status=400) from None
        return services.register_bundle(
            source=target,
            user=user,
            name=f"{parent.name} + {edit_name}"[:100],
            purpose=parent.purpose,
            how="catalog",
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
