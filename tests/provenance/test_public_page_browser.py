"""The public "Was this image made here?" page in Chromium, as someone outside sees it.

A released output (marked by the same call the release hook makes, on a full-resolution
result of the job pipeline) is re-saved as JPEG — which drops its C2PA manifest — and
uploaded anonymously: the page says "Made here" with the job reference and the audit log
entry (index, checkpoint), and nothing about the requester or the purpose. An unrelated
photo reads "No match"; a file that is not an image gets a message naming the problem.
"""

from __future__ import annotations

import io

import pytest
from django.core.cache import caches
from PIL import Image

from audit.models import AuditEvent
from editplatform.core.errors import DomainError
from editplatform.provenance import corpus
from editplatform.provenance.services import find_matching_jobs, mark_output
from tests.provenance.conftest import clone_job, png_bytes, run_real_job


def _checks() -> int:
    return AuditEvent.objects.filter(action="provenance.checked").count()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_anyone_learns_made_here_with_the_job_reference_and_no_match_for_other_photos(
    worker, requester, live_server, page, settings, tmp_path
):
    settings.PROVENANCE_PUBLIC_CHECK = True
    settings.PROVENANCE_PUBLIC_CHECK_RATE = "100/minute"
    caches[settings.PROVENANCE_THROTTLE_CACHE].clear()
    template = run_real_job(requester)
    job, event = clone_job(template, purpose="Catalogue refresh for the spring campaign")
    released = mark_output(job, png_bytes(corpus.pipeline_outputs(1)[0]), audit_event=event)
    found = tmp_path / "found-online.jpg"
    Image.open(io.BytesIO(released.data)).convert("RGB").save(found, format="JPEG", quality=85)
    unrelated = tmp_path / "holiday.png"
    corpus.unrelated(40)[39].save(unrelated, format="PNG")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are my notes, not a picture\n")
    before = _checks()

    url = f"{live_server.url}/provenance/public-check"
    page.goto(url)  # no sign-in
    assert page.locator("h1").inner_text() == "Was this image made here?"

    page.set_input_files("#public-image", str(found))
    page.click("#public-check-submit")
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict").inner_text() == "Made here"
    refs = page.locator("#job-references")
    assert str(job.pk) in page.locator(".job-ref").all_inner_texts()
    assert f"#{event.seq}" in refs.inner_text()
    checkpoint = released.manifest_info["checkpoint"]["size"]
    assert f"signed checkpoint of size {checkpoint}" in " ".join(refs.inner_text().split())
    text = page.locator("main").inner_text()
    assert requester.username not in text and "spring campaign" not in text

    page.goto(url)
    page.set_input_files("#public-image", str(unrelated))
    page.click("#public-check-submit")
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict").inner_text() == "No match"
    assert page.locator(".job-ref").count() == 0

    page.goto(url)
    page.set_input_files("#public-image", str(not_an_image))
    page.click("#public-check-submit")
    error = page.locator("#check-error")
    error.wait_for()
    assert "images are accepted" in error.inner_text(), error.inner_text()
    assert page.locator("#verdict").count() == 0

    # Both answered checks are in the audit log; the refused upload is not.
    assert _checks() == before + 2

    # The function-level lookup the page builds on (and data subject requests will use):
    # the same answer, nothing recorded.
    matches = find_matching_jobs(found.read_bytes())
    assert matches and matches[0].job_id == str(job.pk), matches
    assert find_matching_jobs(unrelated.read_bytes()) == []
    with pytest.raises(DomainError):
        find_matching_jobs(not_an_image.read_bytes())
    assert _checks() == before + 2
