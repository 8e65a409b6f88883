"""Done-when of issue 16 item 1, end to end with a live worker: register the shipped demo
bundle and a child, activate the child with two people (one person alone is refused),
a job on the running worker records the child's version without a restart, a job pinned
to the previous version still runs with it, roll back (four-eyes again), a job pinned to
a retired version fails naming it, and the audit log holds every step."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client

from audit.models import AuditEvent
from editplatform.core.errors import DomainError
from editplatform.jobs import engine
from editplatform.jobs import services as job_services
from editplatform.jobs.models import EditJob
from editplatform.jobs.states import State
from editplatform.jobs.uploads import validate_image
from editplatform.models_registry import services
from editplatform.models_registry.models import ModelVersion
from inversion.bundle import verify_bundle_files
from tests import catalog
from tests.approvals.test_four_eyes import png
from tests.conftest import api_client_for, mark_two_factor_verified
from tests.jobs.conftest import submit_via_api, wait_for_state


def portal(user) -> Client:
    client = Client()
    client.force_login(user)
    mark_two_factor_verified(client, user)
    return client


def run_job(user, seed: int) -> EditJob:
    response = submit_via_api(api_client_for(user), png(seed))
    assert response.status_code == 201, response.content
    return wait_for_state(response.json()["id"], State.SUCCEEDED, timeout=120)


def submit_pinned(user, seed: int, pin: str) -> EditJob:
    """Submit, and (in the same transaction, before it is published) pin it to ``pin``."""
    with transaction.atomic():
        job, _ = job_services.submit(
            user=user,
            image=validate_image(png(seed)),
            edits=catalog.request(),
            purpose="pinned model test",
            consent=True,
            source="portal",
        )
        EditJob.objects.filter(pk=job.pk).update(model_pin=pin)
    return job


def four_eyes(version: ModelVersion, approver_client: Client, admin_client: Client) -> None:
    r = approver_client.post(
        f"/models/{version.version}/approve",
        {"bundle_sha256": version.version, "comment": "card and figures reviewed"},
    )
    assert r.status_code == 302
    version.refresh_from_db()
    assert version.state == ModelVersion.State.APPROVED, version.state
    r = admin_client.post(f"/models/{version.version}/activate", {"bundle_sha256": version.version})
    assert r.status_code == 302
    version.refresh_from_db()
    assert version.state == ModelVersion.State.ACTIVE, version.state


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_register_activate_four_eyes_run_roll_back(
    celery_worker, registry_people, model_bundle, child_bundle
):
    people = registry_people
    admin1, boss, mapprover = people["admin1"], people["boss"], people["mapprover"]
    demo_version = verify_bundle_files(model_bundle)
    first_seq = (AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0) + 1

    # Register both (an admin); a requester may not.
    with pytest.raises(DomainError) as refused:
        services.register_bundle(source=Path(model_bundle), user=people["req"])
    assert refused.value.status == 403
    demo = services.register_bundle(source=Path(model_bundle), user=admin1, name="demo")
    child = services.register_bundle(source=child_bundle, user=admin1, name="child")
    assert demo.version == demo_version and demo.state == ModelVersion.State.REGISTERED
    assert child.parent_version == demo.version and child.card["parent_version"] == demo.version
    assert Path(child.path).parent == Path(demo.path).parent  # the registry's own copies
    # The registry now governs: nothing active yet means no model rather than MODEL_BUNDLE.
    with pytest.raises(engine.ModelUnavailable):
        engine.get_catalog()

    # Demo first: a model approver and a second person, an admin.
    four_eyes(demo, portal(mapprover), portal(admin1))
    first = run_job(people["req"], 1)
    assert first.model_version == demo.version == first.model_pin

    # One person alone is refused: boss approves the child, then cannot activate it.
    boss_client = portal(boss)
    assert (
        boss_client.post(
            f"/models/{child.version}/approve", {"bundle_sha256": child.version}
        ).status_code
        == 302
    )
    child.refresh_from_db()
    assert child.state == ModelVersion.State.APPROVED and child.approved_by == boss
    page = boss_client.post(
        f"/models/{child.version}/activate", {"bundle_sha256": child.version}, follow=True
    )
    assert "second person must activate it" in page.content.decode()
    with pytest.raises(DomainError) as alone:
        services.activate(child, boss, bundle_sha256=child.version)
    assert alone.value.status == 403
    # ... and an activation bound to other bytes is refused too.
    with pytest.raises(DomainError) as wrong_hash:
        services.activate(child, admin1, bundle_sha256=demo.version)
    assert wrong_hash.value.code == "hash_mismatch"
    child.refresh_from_db()
    assert child.state == ModelVersion.State.APPROVED
    assert services.active_version().version == demo.version

    # The second person activates it; the live worker picks it up without a restart.
    assert (
        portal(admin1)
        .post(f"/models/{child.version}/activate", {"bundle_sha256": child.version})
        .status_code
        == 302
    )
    child.refresh_from_db()
    demo.refresh_from_db()
    assert child.state == ModelVersion.State.ACTIVE
    assert demo.state == ModelVersion.State.REGISTERED  # its approval was used up
    second = run_job(people["req"], 2)
    assert second.model_version == child.version == second.model_pin
    detail = portal(people["req"]).get(f"/jobs/{second.pk}/").content.decode()
    assert f'href="/models/{child.version}/"' in detail  # the job links to its model card

    # A job pinned (at submit) to the previous version still runs with it.
    pinned = submit_pinned(people["req"], 3, demo.version)
    pinned = wait_for_state(pinned.pk, State.SUCCEEDED, timeout=120)
    assert pinned.model_version == demo.version

    # Roll back = activate the previous version, four-eyes again (boss alone may not).
    with pytest.raises(DomainError):
        services.activate(demo, admin1, bundle_sha256=demo.version)  # not approved
    four_eyes(demo, portal(mapprover), portal(boss))
    third = run_job(people["req"], 4)
    assert third.model_version == demo.version

    # Retire the child: a job still pinned to it fails with a message naming it.
    services.retire(ModelVersion.objects.get(pk=child.pk), admin1, reason="superseded in test")
    refused_job = submit_pinned(people["req"], 5, child.version)
    refused_job = wait_for_state(refused_job.pk, State.FAILED, timeout=120)
    assert refused_job.error_code == "model_unknown"
    assert child.version[:12] in refused_job.error and "retired" in refused_job.error

    # Every step is in the audit log, in order.
    d, c = f"model:{demo.version}", f"model:{child.version}"
    steps = [
        (e.action, e.subject)
        for e in AuditEvent.objects.filter(
            action__startswith="model.", subject__in=[d, c], seq__gte=first_seq
        ).order_by("seq")
    ]
    assert steps == [
        ("model.registered", d),
        ("model.registered", c),
        ("model.approved", d),
        ("model.activated", d),
        ("model.approved", c),
        ("model.deactivated", d),
        ("model.activated", c),
        ("model.approved", d),
        ("model.deactivated", c),
        ("model.activated", d),
        ("model.retired", c),
    ]
    rollback = (
        AuditEvent.objects.filter(action="model.activated", subject=d, seq__gte=first_seq)
        .order_by("seq")
        .last()
    )
    assert rollback.payload["rollback"] is True and rollback.payload["replaced"] == child.version
    assert rollback.payload["approved_by"] == "mapprover" and rollback.actor == boss
    activated_child = AuditEvent.objects.get(
        action="model.activated", subject=c, seq__gte=first_seq
    )
    assert activated_child.payload["bundle_sha256"] == child.version
    assert activated_child.payload["approved_by"] == "boss" and activated_child.actor == admin1
    # The jobs' own events record the version each ran with.
    succeeded = AuditEvent.objects.get(action="job.succeeded", subject=f"job:{second.pk}")
    assert succeeded.payload["model_version"] == child.version
    # Reviewers read it all on the history page.
    history = portal(people["rev"]).get("/models/history")
    assert history.status_code == 200
    assert history.content.decode().count('data-action="model.activated"') >= 3
