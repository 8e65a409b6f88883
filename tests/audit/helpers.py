"""Reviewer accounts with a confirmed TOTP device (reviewers must pass 2FA)."""

from __future__ import annotations

import io

from django.contrib.auth import get_user_model
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from PIL import Image

from editplatform.accounts.roles import ensure_groups
from tests.audit import action_names as actions

PASSWORD = "reviewer-pass-phrase-1"


def make_user(username: str, role: str | None):
    user = get_user_model().objects.create_user(username, password=PASSWORD)
    if role:
        user.groups.add(ensure_groups()[role])
    if role in ("reviewer", "approver", "admin"):
        TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    return user


def current_code(user) -> str:
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    code = totp(
        device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift
    )
    return f"{code:06d}"


def sign_in(client, user) -> None:
    client.force_login(user)
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        response = client.post("/account/2fa/?next=/", {"token": current_code(user)})
        assert response.status_code == 302, response.content[:500]


def png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buffer, "PNG")
    return buffer.getvalue()


def make_job_with_outputs(requester):
    """A finished job with real stored artifacts, and the events the jobs code writes."""
    from audit.log import append_event
    from editplatform.jobs import artifacts
    from editplatform.jobs.models import EditJob

    original = artifacts.store(png((200, 10, 10)), "image/png", width=16, height=16)
    reconstruction = artifacts.store(png((10, 200, 10)), "image/png", width=16, height=16)
    edited = artifacts.store(png((10, 10, 200)), "image/png", width=16, height=16)
    latent = artifacts.store(b"\x00" * 64, "application/octet-stream")
    job = EditJob.objects.create(
        requester=requester,
        source="portal",
        original=original,
        upload_sha256=original.sha256,
        upload_format="png",
        edits={"brightness": 0.5},
        purpose="audit test",
        consent=True,
        params_sha256="0" * 64,
        state="succeeded",
        reconstruction=reconstruction,
        edited=edited,
        latent=latent,
    )
    subject = f"job:{job.pk}"  # as editplatform.jobs.events.job_subject writes it
    append_event(
        actions.JOB_SUBMITTED,
        actor=requester,
        subject=subject,
        payload={"original_sha256": original.sha256, "edits": {"brightness": 0.5}},
    )
    append_event(actions.JOB_STARTED, subject=subject, payload={})
    append_event(
        actions.JOB_SUCCEEDED,
        subject=subject,
        payload={
            "original_sha256": original.sha256,
            "latent_sha256": latent.sha256,
            "model_version": "bundle-abc",
            "outputs": {"reconstruction": reconstruction.sha256, "edited": edited.sha256},
        },
    )
    return job
