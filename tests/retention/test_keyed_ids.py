"""The log records keyed commitments, not plain SHA-256: erased images cannot be confirmed.

A real job (the real task, the demo model, PostgreSQL) writes its events; none of them
holds the plain SHA-256 of any of its artifacts, of the upload, or the parameter and
output hashes computed from them. Before erasure a reviewer's timeline and a verifier
(:func:`keyed_ids.confirm`, recomputing the commitment from the bytes and the data
key) still tie the events to the artifacts; after an approved erasure, hashing copies
of the images (and recomputing the derived hashes) matches nothing the log recorded
since the cut-over, while `audit verify` and the certificate still pass. Events written
before the cut-over keep their plain hashes and still verify.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from audit import log as audit_log
from audit.log import append_event
from audit.models import AuditEvent
from editplatform.jobs import artifacts, keyed_ids, policy, shredding
from editplatform.jobs import services as job_services
from editplatform.jobs.models import Artifact, EditJob
from editplatform.jobs.tasks import run_edit_job
from editplatform.jobs.uploads import validate_image
from editplatform.retention import erasure
from tests import catalog
from tests.audit.helpers import sign_in
from tests.conftest import api_client_for
from tests.jobs import images
from tests.retention.test_retention import (  # noqa: F401 - fixtures
    _vkey,
    fast_hasher_and_storage,
    make_job,
    people,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_job(user, seed: int) -> tuple[EditJob, bytes]:
    upload = images.png((40, 40), seed=seed)
    job, _ = job_services.submit(
        user=user,
        image=validate_image(upload),
        edits=catalog.request(),
        purpose="keyed ids test",
        consent=True,
        source="api",
    )
    run_edit_job.apply(args=[str(job.pk)])  # the real task, in this process
    job.refresh_from_db()
    assert job.state == "succeeded", job.error
    return job, upload


def log_text(events) -> str:
    """Everything an event records that a reader of the log or an export sees."""
    return "\n".join(
        json.dumps([event.subject, event.subjects, event.payload], sort_keys=True)
        for event in events
    )


def job_events(job) -> list[AuditEvent]:
    return [
        event
        for event in AuditEvent.objects.order_by("seq")
        if f"job:{job.pk}" in (event.subject, *event.subjects)
    ]


def plain_hashes(job, copies: dict[str, bytes], upload: bytes) -> dict[str, str]:
    """What someone holding copies of the job's files can compute without any key."""
    found = {kind: hashlib.sha256(body).hexdigest() for kind, body in copies.items()}
    found["upload"] = hashlib.sha256(upload).hexdigest()
    found["params"] = policy.job_params_sha256(job)  # computed from the plain original hash
    found["outputs"] = policy.outputs_sha256(job)
    return found


def test_new_job_events_record_commitments_an_erased_copy_matches_nothing(
    people,  # noqa: F811
    model_bundle,
    tmp_path,
):
    alice, rita, rob = people["alice"], people["rita"], people["rob"]
    job, upload = run_job(alice, seed=3)
    fields = shredding.artifacts_of(job)
    assert {"original", "edited", "latent"} <= set(fields)
    copies = {field: artifacts.read(Artifact.objects.get(pk=sha)) for field, sha in fields.items()}
    plain = plain_hashes(job, copies, upload)
    assert plain["original"] == job.original_id and plain["params"] == job.params_sha256

    events = job_events(job)
    text = log_text(events)
    for name, value in plain.items():
        assert value not in text, f"the log records the plain {name} hash"
    done = next(e for e in events if e.action == "job.succeeded").payload
    submitted = next(e for e in events if e.action == "job.submitted").payload
    assert done["artifact_ids"] == submitted["artifact_ids"] == keyed_ids.SCHEME

    # Before erasure: a verifier recomputes each commitment from the bytes and data key.
    assert keyed_ids.confirm(done["original_sha256"], job.original)
    assert keyed_ids.confirm(done["latent_sha256"], job.latent)
    assert keyed_ids.confirm(done["outputs"]["edited"], job.edited)
    assert not keyed_ids.confirm(done["outputs"]["edited"], job.original)
    assert keyed_ids.confirm_derived(
        submitted["upload_sha256"], "upload_sha256", plain["upload"], job.original
    )
    assert keyed_ids.confirm_derived(
        submitted["params_sha256"], "params_sha256", job.params_sha256, job.original
    )
    # ... and the reviewer's timeline ties the recorded ids to the job's images.
    reviewer = api_client_for(rita)
    sign_in(reviewer, rita)
    page = reviewer.get(f"/audit/jobs/?subject=job:{job.pk}").content.decode()
    thumbnail = reverse("compliance:artifact", args=[f"job:{job.pk}", job.original_id])
    assert thumbnail in page

    request = erasure.record(rita, subject="Alice", jobs=[job])
    erasure.approve(request, rob)
    request.refresh_from_db()

    # After erasure: copies of every file, and every hash derived from them, match nothing
    # the log recorded since the cut-over -- the job's events, the shredding, the erasure.
    everything = log_text(AuditEvent.objects.order_by("seq"))
    for name, value in plain.items():
        assert value not in everything, f"a copy's {name} hash is confirmable after erasure"
    assert not keyed_ids.confirm(done["original_sha256"], Artifact.objects.get(pk=job.original_id))
    assert not keyed_ids.confirm_derived(
        submitted["upload_sha256"], "upload_sha256", plain["upload"], job.original
    )
    shredded = list(AuditEvent.objects.filter(action="artifact.shredded"))
    assert {e.payload["commitment"] for e in shredded} >= {
        done["original_sha256"],
        done["latent_sha256"],
        done["outputs"]["edited"],
    }
    erasure.verify_certificate(request.certificate, _vkey())
    call_command("audit", "verify")
    page = reviewer.get(f"/audit/jobs/?subject=job:{job.pk}").content.decode()
    assert "erased on" in page


def test_events_from_before_the_cut_over_keep_plain_hashes_and_still_verify(
    people,  # noqa: F811
    monkeypatch,
    tmp_path,
):
    alice, rita, rob = people["alice"], people["rita"], people["rob"]
    with monkeypatch.context() as before:  # the log as it was before the cut-over
        before.setattr(audit_log, "_EVENT_FILTERS", [])
        job, data = make_job(alice, 21, ended_days_ago=0)
    old = AuditEvent.objects.get(subject=f"job:{job.pk}", action="job.succeeded")
    assert old.payload["original_sha256"] == job.original_id and "artifact_ids" not in old.payload
    assert keyed_ids.confirm(old.payload["original_sha256"], job.original)
    assert keyed_ids.recorded_ids(job)[job.original_id] == job.original_id
    # A new event about the same job is keyed; both readings lead to the same artifact.
    append_event(
        "job.succeeded",
        subject=f"job:{job.pk}",
        payload={"original_sha256": job.original_id, "outputs": {"edited": job.edited_id}},
    )
    new = AuditEvent.objects.filter(action="job.succeeded").order_by("-seq").first()
    assert new.payload["original_sha256"] != job.original_id
    ids = keyed_ids.recorded_ids(job)
    assert ids[new.payload["original_sha256"]] == ids[old.payload["original_sha256"]]

    reviewer = api_client_for(rita)
    sign_in(reviewer, rita)
    assert reviewer.get(f"/audit/jobs/?subject=job:{job.pk}").status_code == 200
    request = erasure.record(rita, subject="Alice", jobs=[job])
    erasure.approve(request, rob)
    request.refresh_from_db()
    old.refresh_from_db()
    assert old.payload["original_sha256"] == job.original_id  # the log never changes
    erasure.verify_certificate(request.certificate, _vkey())
    call_command("audit", "verify")
