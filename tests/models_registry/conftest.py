"""People and bundles for the model-registry tests: an admin, a second admin who is also a
model approver (to show one person alone is refused), a model approver, a requester and
a reviewer; the shipped demo bundle and a child derived from it with a changed catalog."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from editplatform.accounts.roles import ensure_groups
from inversion.bundle import load_bundle
from inversion.bundle_derive import derive_bundle
from inversion.editing.catalog import EditCatalog


def grant_model_approver(user) -> None:
    user.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="models_registry", codename="approve_modelversion"
        )
    )


@pytest.fixture
def registry_people(db, model_bundle):
    groups = ensure_groups()
    users = {}
    for name, roles, approver in [
        ("admin1", ["admin"], False),
        ("boss", ["admin"], True),  # an admin who may also approve models
        ("mapprover", ["requester"], True),
        ("req", ["requester"], False),
        ("rev", ["reviewer"], False),
    ]:
        user = get_user_model().objects.create_user(name, password="x" * 20)
        for role in roles:
            user.groups.add(groups[role])
        if approver:
            grant_model_approver(user)
        users[name] = get_user_model().objects.get(pk=user.pk)  # fresh permission cache
    return users


def make_child(parent_dir: Path, out: Path, suffix: str = " (child catalog)") -> Path:
    """A child bundle: the parent's weights, every edit description changed."""
    parent = load_bundle(parent_dir)
    specs = [dataclasses.replace(s, description=s.description + suffix) for s in parent.catalog]
    catalog = EditCatalog(specs, subject_kind=parent.catalog.subject_kind)
    derive_bundle(parent, out, catalog=catalog, change={"what": "catalog descriptions (test)"})
    return out


@pytest.fixture
def child_bundle(model_bundle, tmp_path) -> Path:
    return make_child(Path(model_bundle), tmp_path / "child")
