"""The Django admin shows model versions but changes none: a version's state moves only
through the four-eyes services, so even a superuser's POST to change, delete, add or run
a bulk action is refused and the row stays as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.test import Client

from audit.models import AuditEvent
from editplatform.models_registry import services
from editplatform.models_registry.models import ModelVersion
from tests.conftest import mark_two_factor_verified

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(db) -> Client:
    # The only way a superuser is made here: the operator's audited command.
    call_command("create_operator_superuser", "root", "--reason", "model admin test")
    user = get_user_model().objects.get(username="root")
    assert user.is_superuser and user.is_staff
    client = Client()
    client.force_login(user)
    mark_two_factor_verified(client, user)
    return client


def test_a_superuser_sees_model_versions_but_cannot_change_or_delete_them(
    superuser_client, registry_people, model_bundle
):
    version = services.register_bundle(
        source=Path(model_bundle), user=registry_people["admin1"], name="demo"
    )
    before = model_to_dict(ModelVersion.objects.get(pk=version.pk))
    events_before = AuditEvent.objects.count()
    base = "/admin/models_registry/modelversion/"

    listing = superuser_client.get(base)
    assert listing.status_code == 200
    assert version.version in listing.content.decode()
    page = superuser_client.get(f"{base}{version.pk}/change/")
    assert page.status_code == 200  # a read-only view: no form fields, no save button
    html = page.content.decode()
    assert version.version in html and 'name="_save"' not in html
    assert 'name="state"' not in html

    changed = {**before, "state": "active", "name": "hijacked", "path": "/tmp/elsewhere"}
    changed = {k: v for k, v in changed.items() if v is not None}
    assert superuser_client.post(f"{base}{version.pk}/change/", changed).status_code == 403
    assert superuser_client.post(f"{base}{version.pk}/delete/", {"post": "yes"}).status_code == 403
    assert superuser_client.get(f"{base}add/").status_code == 403
    assert superuser_client.post(f"{base}add/", changed).status_code == 403
    bulk = superuser_client.post(
        base, {"action": "delete_selected", "_selected_action": [version.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)  # "no action selected": the action does not exist

    assert model_to_dict(ModelVersion.objects.get(pk=version.pk)) == before
    assert ModelVersion.objects.count() == 1
    assert AuditEvent.objects.count() == events_before
