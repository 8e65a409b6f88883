"""The registry's rules: register, approve, activate (four-eyes), retire, bootstrap.

- Registering (an admin) verifies the bundle's hashes on a copy in the store and stores
  the model card built from its manifest.
- Activation takes two people: a *model approver* (permission
  ``models_registry.approve_modelversion``) approves the version, bound to its bundle
  hash; then an *admin*, who must be someone else, activates it, presenting the same
  hash. Both re-verify the stored bundle's files first. The approval is used up by
  the activation: the version it replaces goes back to ``registered``, so a rollback
  (activating a previous version) needs a fresh approval and a second person too.
- At most one version is active per purpose (also a database constraint).
- Every step is an audit event (subject ``model:<version>``) in the same transaction.

Refusals are DomainErrors: 403 for who may act (four-eyes included), 409 for a state
that no longer allows the step, 400 for a bundle hash that does not match.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.log import append_event
from editplatform.accounts.recovery import is_suspended
from editplatform.accounts.roles import ADMIN, has_role
from editplatform.core.errors import DomainError
from editplatform.models_registry import store
from editplatform.models_registry.audit_actions import (
    MODEL_ACTIVATED,
    MODEL_APPROVED,
    MODEL_BOOTSTRAPPED,
    MODEL_DEACTIVATED,
    MODEL_REGISTERED,
    MODEL_RETIRED,
)
from editplatform.models_registry.card import build_card, parent_version
from editplatform.models_registry.models import DEFAULT_PURPOSE, ModelVersion
from inversion.bundle import verify_bundle_files
from inversion.errors import BundleError

logger = logging.getLogger(__name__)
APPROVE_PERMISSION = "models_registry.approve_modelversion"
State = ModelVersion.State


def _forbidden(message: str) -> DomainError:
    return DomainError(message, "permission_denied", status=403)


def _conflict(message: str) -> DomainError:
    return DomainError(message, "conflict", status=409)


def is_model_approver(user) -> bool:
    return bool(
        getattr(user, "is_active", False)
        and user.has_perm(APPROVE_PERMISSION)
        and not is_suspended(user)
    )


def _require_admin(user, what: str) -> None:
    if not has_role(user, ADMIN):
        raise _forbidden(f"only admins may {what}")


def _emit(action: str, version: ModelVersion, *, actor=None, actor_name=None, **payload) -> None:
    append_event(
        action,
        actor=actor,
        actor_name=actor_name if actor is None else None,
        subject=version.subject,
        payload={"name": version.name, "purpose": version.purpose, **payload},
        subjects=[f"model:{version.parent_version}"] if version.parent_version else [],
    )


def _reverify(version: ModelVersion) -> None:
    """The stored bundle's files still hash to the version (checked before each decision)."""
    try:
        found = verify_bundle_files(version.path)
    except BundleError as exc:
        raise _conflict(f"the stored bundle of {version.short} fails verification: {exc}") from None
    if found != version.version:
        raise _conflict(f"the stored bundle of {version.short} is now version {found[:12]}")


def _check_hash(version: ModelVersion, bundle_sha256: str) -> None:
    if (bundle_sha256 or "").strip().lower() != version.version:
        raise DomainError(
            f"the bundle hash you confirmed ({(bundle_sha256 or '')[:12] or 'none'}) is not "
            f"this version's ({version.short}); reload the model card",
            "hash_mismatch",
            status=400,
            field="bundle_sha256",
        )


def _lock(version: ModelVersion) -> ModelVersion:
    return ModelVersion.objects.select_for_update().get(pk=version.pk)


# --- register ------------------------------------------------------------------------


def register_bundle(
    *,
    source: Path | None = None,
    upload: bytes | None = None,
    user,
    name: str = "",
    purpose: str = DEFAULT_PURPOSE,
    how: str = "",
) -> ModelVersion:
    """Verify a bundle (server path or uploaded zip), store it and its card: `registered`."""
    _require_admin(user, "register models")
    if (source is None) == (upload is None):
        raise DomainError("give either a server path or an uploaded zip", "invalid", status=400)
    bundle = (
        store.import_directory(Path(source)) if source is not None else store.import_zip(upload)
    )
    return _create(
        bundle,
        name=name,
        purpose=purpose,
        user=user,
        how=how or ("path" if source is not None else "upload"),
    )


def _create(
    bundle, *, name, purpose=DEFAULT_PURPOSE, user=None, how, state=State.REGISTERED, **fields
):
    manifest = bundle.manifest
    card = build_card(bundle.version, manifest, bundle.catalog.to_dict())
    name = (name or "").strip()[
        :100
    ] or f"{card['architecture']['encoder_arch']} {bundle.version[:8]}"
    try:
        with transaction.atomic():
            version = ModelVersion.objects.create(
                version=bundle.version,
                name=name,
                purpose=purpose or DEFAULT_PURPOSE,
                state=state,
                path=str(bundle.path),
                card=card,
                parent_version=parent_version(manifest),
                source=how,
                registered_by=user,
                **fields,
            )
            payload = {
                "bundle_sha256": bundle.version,
                "source": how,
                "parent_version": version.parent_version or None,
                "files": {f["name"]: f["sha256"] for f in card["files"]},
                "edits": [e["name"] for e in card["edits"]],
                "sensitive_edits": [e["name"] for e in card["edits"] if e["sensitive"]],
            }
            if state == State.ACTIVE:
                _emit(MODEL_BOOTSTRAPPED, version, actor_name="system:bootstrap", **payload)
            else:
                _emit(MODEL_REGISTERED, version, actor=user, **payload)
    except IntegrityError:
        raise _conflict(f"model version {bundle.version[:12]} is already registered") from None
    return version


def bootstrap(path: Path) -> ModelVersion | None:
    """First start with an empty registry: register and activate ``path`` (no four-eyes).

    Recorded as ``model.bootstrapped`` so a reviewer sees the one activation no second
    person made. Does nothing (returns None) once any version is registered.
    """
    if ModelVersion.objects.exists():
        return None
    bundle = store.import_directory(Path(path))
    return _create(
        bundle,
        name="bootstrap: " + Path(path).name,
        how="bootstrap",
        state=State.ACTIVE,
        activated_at=timezone.now(),
    )


# --- the four-eyes activation ------------------------------------------------------


def approve(version: ModelVersion, approver, *, bundle_sha256: str, comment: str = ""):
    """A model approver approves ``version`` for activation, bound to its bundle hash."""
    if not is_model_approver(approver):
        raise _forbidden("only model approvers may approve a model version")
    _check_hash(version, bundle_sha256)
    with transaction.atomic():
        locked = _lock(version)
        if locked.state != State.REGISTERED:
            raise _conflict(
                f"only a registered version can be approved; this one is {locked.state}"
            )
        _reverify(locked)
        locked.state = State.APPROVED
        locked.approved_by = approver
        locked.approved_at = timezone.now()
        locked.approved_sha256 = locked.version
        locked.approval_comment = (comment or "").strip()[:2000]
        locked.save()
        _emit(
            MODEL_APPROVED,
            locked,
            actor=approver,
            bundle_sha256=locked.version,
            comment=locked.approval_comment,
        )
    return locked


def activate(version: ModelVersion, admin, *, bundle_sha256: str) -> ModelVersion:
    """An admin other than the approver makes an approved version the active one."""
    _require_admin(admin, "activate model versions")
    _check_hash(version, bundle_sha256)
    with transaction.atomic():
        locked = _lock(version)
        if locked.state != State.APPROVED:
            raise _conflict(
                f"only an approved version can be activated; this one is {locked.state} "
                "(a model approver must approve it first)"
            )
        if locked.approved_by_id == admin.pk:
            raise _forbidden(
                "you approved this version; a second person must activate it (four-eyes rule)"
            )
        if locked.approved_sha256 != locked.version:
            raise _conflict("the approval was given for other bundle bytes; approve again")
        if locked.approved_by is None or not is_model_approver(locked.approved_by):
            raise _conflict("the approver no longer holds the model approver permission")
        _reverify(locked)
        previous = (
            ModelVersion.objects.select_for_update()
            .filter(purpose=locked.purpose, state=State.ACTIVE)
            .first()
        )
        rollback = bool(locked.activated_at)  # it was active before
        if previous is not None:
            previous.state = State.REGISTERED
            previous.approved_by = None
            previous.approved_at = None
            previous.approved_sha256 = ""
            previous.approval_comment = ""
            previous.save()
            _emit(MODEL_DEACTIVATED, previous, actor=admin, replaced_by=locked.version)
        approver = locked.approved_by
        locked.state = State.ACTIVE
        locked.activated_by = admin
        locked.activated_at = timezone.now()
        locked.save()
        _emit(
            MODEL_ACTIVATED,
            locked,
            actor=admin,
            bundle_sha256=locked.version,
            approved_by=approver.get_username(),
            approved_at=locked.approved_at.isoformat(),
            replaced=previous.version if previous is not None else None,
            rollback=rollback,
        )
    logger.info("model version %s activated for %s", locked.version, locked.purpose)
    return locked


def retire(version: ModelVersion, admin, *, reason: str) -> ModelVersion:
    """Retire a version that is not active: no job runs with it again (pinned jobs fail)."""
    _require_admin(admin, "retire model versions")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("give a reason for retiring the version", "invalid", status=400)
    with transaction.atomic():
        locked = _lock(version)
        if locked.state == State.ACTIVE:
            raise _conflict("the active version cannot be retired; activate another first")
        if locked.state == State.RETIRED:
            raise _conflict("this version is already retired")
        locked.state = State.RETIRED
        locked.retired_at = timezone.now()
        locked.approved_by = None
        locked.approved_sha256 = ""
        locked.save()
        _emit(MODEL_RETIRED, locked, actor=admin, reason=reason[:2000])
    return locked


def active_version(purpose: str = DEFAULT_PURPOSE) -> ModelVersion | None:
    return ModelVersion.objects.filter(purpose=purpose, state=State.ACTIVE).first()
