"""The photo lookup of data-subject requests over the API, and what a check records.

A reviewer (second factor verified) uploads a photo the person supplied; the "was this
made here?" lookup answers with candidate jobs, which go into a request. Everyone else
is refused, bad input is a 4xx naming the field and records nothing. The check's audit
event names the photo by a keyed hash under a per-check salt (not its SHA-256): while
the salt lives a reviewer holding the photo can confirm the check; erasing the jobs it
found, or the retention run after PROVENANCE_CHECK_KEY_DAYS, shreds the salt, and a
copy of the photo then matches nothing in the log. Old events with a plain hash still
verify and confirm. On PostgreSQL, no mocks.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.db.models import Max
from django.utils import timezone
from rest_framework.test import APIClient

from audit.log import append_event
from audit.models import AuditEvent, AuditEventSubject
from editplatform.provenance import check_keys, corpus
from editplatform.provenance.audit_actions import PROVENANCE_CHECKED
from editplatform.provenance.models import CheckKey
from editplatform.provenance.services import check_image, mark_output
from editplatform.retention import policies
from tests.audit.helpers import make_user
from tests.conftest import api_client_for
from tests.provenance.conftest import png_bytes
from tests.retention.test_api import reviewer_client
from tests.retention.test_retention import (  # noqa: F401 - fixtures
    assert_log_verifies,
    fast_hasher_and_storage,
    make_job,
    people,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LOOKUP = "/api/v1/retention/photo-lookup"
REQUESTS = "/api/v1/retention/requests"


@pytest.fixture(autouse=True)
def dev_ca(settings, tmp_path):
    settings.PROVENANCE_DEV_CA_DIR = tmp_path / "provenance-ca"
    settings.C2PA_SIGNING_KEY_FILE = settings.C2PA_CERT_CHAIN_FILE = None
    settings.C2PA_TRUST_ANCHORS_FILE = None


def released_photo(job) -> bytes:
    """A released (watermarked, fingerprinted, C2PA-signed) output of ``job``."""
    event = AuditEvent.objects.get(subject=f"job:{job.pk}", action="job.succeeded")
    return mark_output(job, png_bytes(corpus.outputs(1)[0]), audit_event=event).data


def _upload(data: bytes, name: str = "photo.png") -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"photo": SimpleUploadedFile(name, data, content_type="application/octet-stream")}


def _log_text() -> str:
    return "\n".join(json.dumps([e.subject, e.payload]) for e in AuditEvent.objects.order_by("seq"))


def test_reviewer_looks_up_a_photo_records_the_candidates_and_erasure_shreds_the_check(
    people,  # noqa: F811
    tmp_path,
):
    job, _ = make_job(people["alice"], 21, ended_days_ago=0)
    other, _ = make_job(people["alice"], 22, ended_days_ago=0)
    photo = released_photo(job)
    plain = hashlib.sha256(photo).hexdigest()
    rita, rob = reviewer_client(people["rita"]), reviewer_client(people["rob"])

    # the log is append-only: earlier tests' checks stay in it, so count from here
    before = AuditEvent.objects.aggregate(last=Max("seq"))["last"]
    checks = AuditEvent.objects.filter(
        action=PROVENANCE_CHECKED, seq__gt=-1 if before is None else before
    )
    refused = {
        "requester": api_client_for(people["alice"]),
        "approver": reviewer_client(make_user("arno", "approver")),
        "api key": api_client_for(make_user("svc", "integration")),
        "reviewer without second factor": APIClient(),
    }
    refused["reviewer without second factor"].force_login(make_user("ron", "reviewer"))
    for who, client in refused.items():
        answer = client.post(LOOKUP, _upload(photo), format="multipart")
        assert answer.status_code == 403, (who, answer.content)
    assert APIClient().post(LOOKUP, _upload(photo), format="multipart").status_code == 401
    for body, status, words in (
        ({}, 400, "no photo was uploaded"),
        (_upload(b""), 400, "empty"),
        (_upload(b"not an image at all"), 415, "image"),
    ):
        answer = rita.post(LOOKUP, body, format="multipart")
        assert answer.status_code == status, answer.content
        assert answer.json()["field"] == "photo" and words in answer.json()["detail"]
    assert not checks.exists() and not CheckKey.objects.exists()

    answer = rita.post(LOOKUP, _upload(photo), format="multipart")
    assert answer.status_code == 200, answer.content
    found = answer.json()
    (candidate,) = found["candidates"]
    assert candidate["job"] == str(job.pk) and candidate["requester"] == "alice"
    assert any(e.startswith("watermark key") for e in candidate["evidence"])
    check = AuditEvent.objects.get(seq=found["check_seq"])
    lookup = AuditEvent.objects.get(seq=found["lookup_seq"])
    assert check.action == PROVENANCE_CHECKED and check.actor_name == "rita"
    assert check.payload["channel"] == "erasure-request"
    assert check.payload["image_ids"] == "keyed-check-v1" and check.payload["jobs"] == [str(job.pk)]
    assert lookup.action == "erasure.photo_lookup" and lookup.payload["candidates"] == [str(job.pk)]
    assert AuditEventSubject.objects.filter(seq=lookup.seq, subject=f"job:{job.pk}").exists()
    # the log names the photo by a keyed hash only; the reviewer holding it can confirm
    assert plain not in _log_text()
    assert check_keys.confirm(check.payload, photo)
    assert not check_keys.confirm(check.payload, released_photo(other))
    # a second check of the same photo records an unrelated value (no linking of checks)
    again = check_image(photo, actor=people["rob"], channel="api")
    second = AuditEvent.objects.get(seq=again.audit_seq).payload
    assert second["sha256"] != check.payload["sha256"] and check_keys.confirm(second, photo)

    recorded = rita.post(
        REQUESTS, {"subject": "Alice", "jobs": [candidate["job"]]}, format="json"
    ).json()
    assert rob.post(f"{REQUESTS}/{recorded['id']}/approve").status_code == 200
    # erasing the job shredded the salts of the checks that found it
    assert not check_keys.confirm(check.payload, photo)
    assert not check_keys.confirm(second, photo)
    assert not CheckKey.objects.filter(pk=check.payload["check_key"]).exists()
    assert_log_verifies(tmp_path)


def test_old_plain_checks_verify_and_the_retention_run_shreds_old_salts(
    people,  # noqa: F811
    settings,
    tmp_path,
):
    settings.PROVENANCE_CHECK_KEY_DAYS = 30
    photo = png_bytes(corpus.unrelated(1)[0])
    plain = hashlib.sha256(photo).hexdigest()
    legacy = append_event(  # what check_image wrote before keyed-check-v1
        PROVENANCE_CHECKED,
        subject=f"image:{plain}",
        payload={"channel": "api", "sha256": plain, "made_here": False, "jobs": []},
    )
    assert check_keys.confirm(legacy.payload, photo)
    assert not check_keys.confirm(legacy.payload, photo + b"x")

    old = AuditEvent.objects.get(seq=check_image(photo, channel="api").audit_seq)
    recent = AuditEvent.objects.get(seq=check_image(photo, channel="api").audit_seq)
    assert old.payload["made_here"] is False and old.subject != f"image:{plain}"
    CheckKey.objects.filter(pk=old.payload["check_key"]).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    assert policies.run()["check_keys"] == 1
    assert not check_keys.confirm(old.payload, photo)
    assert check_keys.confirm(recent.payload, photo)
    ran = AuditEvent.objects.filter(action="retention.ran").latest("seq")
    assert ran.payload["check_keys"] == 1
    assert_log_verifies(tmp_path)
