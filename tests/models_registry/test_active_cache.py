"""The submit path's per-process cache of the active model version (issue 18 item 4).

A web process asks the registry for the active version once and keeps the answer; the
job's transaction confirms it in one statement. These tests show that a stale answer
never pins a job: after an activation the cached version is the old one, yet the job is
pinned to the new one; with nothing registered cached, a version registered meanwhile
(none active) is a 503 with nothing stored; on PostgreSQL the confirmation share-locks
the active row, so an activation waits for the submitting transaction to commit.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from editplatform.core.errors import DomainError
from editplatform.jobs import model_source
from editplatform.jobs import services as job_services
from editplatform.jobs.models import Artifact, EditJob
from editplatform.models_registry import services
from editplatform.models_registry.models import ModelVersion
from tests import catalog
from tests.approvals.test_four_eyes import png

INSIDE = ('INSERT INTO "jobs_artifact" ', 'INSERT INTO "jobs_editjob" ')


def submit(user, seed: int) -> EditJob:
    job, created = job_services.submit(
        user=user,
        image=png(seed),
        edits=catalog.request(),
        purpose="active version cache test",
        consent=True,
        source="api",
    )
    assert created
    return job


def activate(version: ModelVersion, people) -> None:
    services.approve(version, people["mapprover"], bundle_sha256=version.version)
    services.activate(version, people["admin1"], bundle_sha256=version.version)


@pytest.mark.django_db
def test_a_stale_cached_version_never_pins_a_job(registry_people, model_bundle, child_bundle):
    people = registry_people
    demo = services.register_bundle(source=Path(model_bundle), user=people["admin1"], name="d")
    child = services.register_bundle(source=child_bundle, user=people["admin1"], name="c")
    activate(demo, people)
    model_source.forget_active()
    assert submit(people["req"], 1).model_pin == demo.version
    assert model_source.resolve_active().version == demo.version  # cached now

    with CaptureQueriesContext(connection) as queries:
        assert submit(people["req"], 2).model_pin == demo.version
    registry = [q["sql"] for q in queries.captured_queries if "models_registry" in q["sql"]]
    # no lookup before the transaction: only the confirmation inside it, locking the row
    assert len(registry) == 1 and "FOR SHARE" in registry[0], registry
    sqls = [q["sql"] for q in queries.captured_queries]
    order = [next(i for i, s in enumerate(sqls) if s.startswith(p)) for p in INSIDE]
    assert order[0] < sqls.index(registry[0]) < order[1]  # in the job's transaction

    activate(child, people)  # the registry's own call; this process's cache still says demo
    assert model_source._active[1].version == demo.version
    third = submit(people["req"], 3)
    assert third.model_pin == child.version
    third.refresh_from_db()
    assert third.model_pin == child.version
    assert model_source.resolve_active().version == child.version  # refreshed
    # the stale try left nothing behind: one job per submit, each original stored once
    assert EditJob.objects.filter(requester=people["req"]).count() == 3
    assert Artifact.objects.filter(pk=third.original_id).count() == 1


@pytest.mark.django_db
def test_cached_nothing_registered_then_a_version_registered_is_refused(
    registry_people, model_bundle
):
    people = registry_people
    model_source.forget_active()
    first = submit(people["req"], 1)  # nothing registered: settings.MODEL_BUNDLE serves
    assert model_source.resolve_active().version is None
    services.register_bundle(source=Path(model_bundle), user=people["admin1"], name="d")
    # the registry governs now and nothing is active: 503, no job, no second original
    with pytest.raises(DomainError) as refused:
        submit(people["req"], 2)
    assert refused.value.status == 503 and refused.value.code == "model_unavailable"
    assert list(EditJob.objects.values_list("pk", flat=True)) == [first.pk]


@pytest.mark.django_db(transaction=True)
def test_an_activation_waits_for_a_submit_that_confirmed_the_old_version(
    registry_people, model_bundle, child_bundle
):
    people = registry_people
    demo = services.register_bundle(source=Path(model_bundle), user=people["admin1"], name="d")
    child = services.register_bundle(source=child_bundle, user=people["admin1"], name="c")
    activate(demo, people)
    services.approve(child, people["mapprover"], bundle_sha256=child.version)
    model_source.forget_active()
    ref = model_source.resolve_active()
    done = threading.Event()
    errors = []

    def other_admin():
        try:
            services.activate(child, people["admin1"], bundle_sha256=child.version)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()
            done.set()

    with transaction.atomic():
        assert model_source.confirm_active(ref)  # what a submit's transaction does
        thread = threading.Thread(target=other_admin)
        thread.start()
        # the activation must deactivate demo, whose row this transaction share-locked:
        # it waits for our lock (PostgreSQL shows its lock request not granted)
        waiting = 0
        for _ in range(200):
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                waiting = cursor.fetchone()[0]
            if waiting or done.is_set():
                break
            time.sleep(0.1)
        assert waiting and not done.is_set()
    assert done.wait(30) and not errors, errors
    thread.join()
    assert services.active_version().version == child.version
