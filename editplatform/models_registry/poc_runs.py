"""Proof-of-concept runs from the portal: start (admin, web side) and run (worker side).

Why: the first adoption step the research recommends is a small proof of concept on the
company's own photos (``python -m inversion poc``). An admin who has no shell on a GPU
worker uploads a zip of photos, picks a registered model version and the price of a
GPU-hour; a worker runs :func:`inversion.poc.measure` over them and stores
``report.json`` and ``report.html`` as sealed artifacts, like every other stored byte.

- :func:`start` validates everything in memory first (:mod:`.poc_upload`), then stores the
  normalised photos (one zip artifact), the run and its ``model.poc_started`` event in
  one transaction, and queues the task after commit: a refused upload stores nothing.
- :func:`execute` (the Celery task's body) claims the run, unpacks the photos into a
  temporary folder under safe names, measures, writes both reports, stores them and
  records ``model.poc_finished`` (succeeded with the reports' hashes, or failed with the
  reason). ``stage`` and ``progress`` move as it goes, for the run's page.

Audit events are under the model version's subject (``model:<version>``: the model
history shows them) with the run as a second subject (``poc:<id>``).
"""

from __future__ import annotations

import json
import logging
import shlex
import tempfile
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.log import append_event
from editplatform.accounts.roles import ADMIN, has_role
from editplatform.core.errors import DomainError
from editplatform.jobs import artifacts
from editplatform.jobs.models import Artifact
from editplatform.models_registry import poc_upload
from editplatform.models_registry.audit_actions import (
    MODEL_POC_FINISHED,
    MODEL_POC_REPORT_READ,
    MODEL_POC_STARTED,
)
from editplatform.models_registry.models import ModelVersion, PocRun

logger = logging.getLogger(__name__)

RUN_POC = "models_registry.run_poc"
BATCH = 16  # photos per forward pass: bounded memory for large models on small GPUs
MAX_PRICE = Decimal("100000")
REPORT_KINDS = {"html": "text/html; charset=utf-8", "json": "application/json"}
State = PocRun.State


def _emit(action: str, run: PocRun, *, actor=None, actor_name=None, **payload) -> None:
    append_event(
        action,
        actor=actor,
        actor_name=actor_name if actor is None else None,
        subject=run.model_version.subject,
        subjects=[run.subject],
        payload={"run": str(run.pk), "photos": run.photo_count, **payload},
    )


def check_price(price) -> Decimal:
    try:
        value = Decimal(str(price))
    except ArithmeticError:
        value = None
    if value is None or not value.is_finite() or value < 0 or value > MAX_PRICE:
        raise DomainError(
            f"the GPU-hour price must be a number from 0 to {MAX_PRICE}, not {str(price)[:20]!r}",
            "invalid_price",
            status=400,
            field="gpu_hour_price",
        )
    return value.quantize(Decimal("0.0001"))


def usable_versions():
    """Registered versions a proof of concept may measure (any state but retired)."""
    return ModelVersion.objects.exclude(state=ModelVersion.State.RETIRED)


def start(*, user, version: ModelVersion, gpu_hour_price, upload: bytes) -> PocRun:
    """Validate the upload, store photos + run + start event atomically, queue the task."""
    if not has_role(user, ADMIN):
        raise DomainError("only admins run proofs of concept", "permission_denied", status=403)
    if version.state == ModelVersion.State.RETIRED:
        raise DomainError(
            f"model version {version.short} is retired",
            "model_retired",
            status=400,
            field="version",
        )
    price = check_price(gpu_hour_price)
    photos = poc_upload.read_photos(upload)  # raises InvalidPhotoZip (400): nothing stored yet
    packed = poc_upload.pack(photos)
    digest = artifacts.write_blob(packed)  # bytes first; removed again if the rows roll back
    try:
        with transaction.atomic():
            stored, _ = Artifact.objects.get_or_create(
                sha256=digest, defaults={"media_type": "application/zip", "size": len(packed)}
            )
            artifacts.revive(stored)
            run = PocRun.objects.create(
                model_version=version,
                requested_by=user,
                gpu_hour_price=price,
                photo_count=len(photos),
                photos=stored,
                stage="queued",
            )
            _emit(
                MODEL_POC_STARTED,
                run,
                actor=user,
                model_version=version.version,
                photos_sha256=stored.sha256,
                gpu_hour_price=str(price),
                names=[p.original_name for p in photos][:50],
            )
            transaction.on_commit(lambda: _publish(run))
    except BaseException:
        artifacts.discard_blob_if_unreferenced(digest)
        raise
    return run


def _publish(run: PocRun) -> None:
    from editplatform.celery import app

    try:
        app.send_task(
            RUN_POC, args=[str(run.pk)], queue="gpu", routing_key="gpu", ignore_result=True
        )
    except Exception as exc:  # the broker is down: say so instead of a run queued forever
        logger.exception("could not queue proof-of-concept run %s", run.pk)
        _fail(run.pk, f"the task queue is unavailable ({type(exc).__name__}); start it again")


# --- the worker's side -------------------------------------------------------------------


def _stage(run_id, stage: str, progress: int) -> None:
    PocRun.objects.filter(pk=run_id, state=State.RUNNING).update(stage=stage, progress=progress)


def _fail(run_id, message: str) -> None:
    with transaction.atomic():
        run = (
            PocRun.objects.select_for_update()
            .select_related("model_version")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.finished:
            return
        run.state, run.error, run.stage = State.FAILED, message[:2000], "failed"
        run.finished_at = timezone.now()
        run.save(update_fields=["state", "error", "stage", "finished_at"])
        _emit(MODEL_POC_FINISHED, run, actor_name="system:worker", outcome="failed", error=message)


def _claim(run_id) -> PocRun | None:
    """queued -> running (or running again after a worker died: acks late redelivers)."""
    claimed = PocRun.objects.filter(pk=run_id, state__in=[State.QUEUED, State.RUNNING]).update(
        state=State.RUNNING, started_at=timezone.now(), stage="unpacking the photos", progress=5
    )
    if not claimed:
        return None
    return PocRun.objects.select_related("model_version", "photos").get(pk=run_id)


def _device() -> str | None:
    return None if settings.JOB_DEVICE in ("", "auto") else settings.JOB_DEVICE


def _summary(result: dict) -> dict:
    gate = result["domain_gate"]
    cost = result.get("cost") or {}
    return {
        "photos_used": result["photos"]["n_used"],
        "photos_skipped": len(result["photos"]["skipped"]),
        "psnr_mean": result["reconstruction"]["psnr"],
        "ssim_mean": result["reconstruction"]["ssim"],
        "gate_pass_rate": gate.get("pass_rate"),
        "images_per_hour": result["speed"]["images_per_hour"],
        "cost_per_1000_images": cost.get("per_1000_images"),
        "hardware": result["speed"]["hardware"],
    }


def execute(run_id) -> str:
    """Run one proof of concept (the task's body); returns the run's final state."""
    run = _claim(run_id)
    if run is None:
        return "finished already"
    try:
        reports = _measure(run)
        _stage(run_id, "storing the report", 95)
        stored = {kind: artifacts.store(data, REPORT_KINDS[kind]) for kind, data in reports.items()}
    except Exception as exc:  # any failure ends the run with its reason, never "running"
        logger.exception("proof-of-concept run %s failed", run_id)
        _fail(run_id, f"{type(exc).__name__}: {exc}")
        return State.FAILED
    result = json.loads(reports["json"])
    with transaction.atomic():
        run = PocRun.objects.select_for_update().select_related("model_version").get(pk=run_id)
        if run.finished:
            return run.state
        run.state, run.stage, run.progress = State.SUCCEEDED, "done", 100
        run.report_json, run.report_html = stored["json"], stored["html"]
        run.summary = _summary(result)
        run.finished_at = timezone.now()
        run.save()
        _emit(
            MODEL_POC_FINISHED,
            run,
            actor_name="system:worker",
            outcome="succeeded",
            model_version=run.model_version.version,
            report_json_sha256=stored["json"].sha256,
            report_html_sha256=stored["html"].sha256,
            summary=run.summary,
        )
    return State.SUCCEEDED


def _measure(run: PocRun) -> dict[str, bytes]:
    from inversion.poc import measure, write_html

    version = run.model_version
    if version.state == ModelVersion.State.RETIRED:
        raise DomainError(f"model version {version.short} was retired", "model_retired")
    with tempfile.TemporaryDirectory(prefix="poc-") as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        count = poc_upload.unpack(artifacts.read(run.photos), photos)
        _stage(run.pk, f"inverting and timing {count} photos", 15)
        result, tensors = measure(
            version.path,
            photos,
            gpu_hour_price=float(run.gpu_hour_price),
            device=_device(),
            batch=BATCH,
            progress=False,
        )
        if result["bundle"]["version"] != version.version:  # the loader verified the files
            raise DomainError(
                f"the stored bundle is version {result['bundle']['version'][:12]}, "
                f"not {version.short}",
                "model_unknown",
            )
        _stage(run.pk, "writing the report", 85)
        result["bundle"]["name"] = version.name
        result["photos"]["folder"] = f"uploaded zip, artifact {run.photos_id}"
        result["run"] = {"id": str(run.pk), "requested_by": run.requested_by_id}
        result["command"] = (
            "unzip the photos artifact into PHOTOS, then: python -m inversion "
            + shlex.join(
                [
                    "poc",
                    "--bundle",
                    version.path,
                    "--photos",
                    "PHOTOS",
                    "--out",
                    "report",
                    "--gpu-hour-price",
                    str(run.gpu_hour_price),
                    "--batch",
                    str(BATCH),
                ]
            )
        )
        html_path = write_html(result, tensors, Path(tmp) / "report.html")
        return {
            "json": json.dumps(result, indent=2).encode(),
            "html": html_path.read_bytes(),
        }


# --- reading the report ---------------------------------------------------------------


def report_artifact(run: PocRun, kind: str) -> Artifact | None:
    if kind not in REPORT_KINDS:
        return None
    return run.report_html if kind == "html" else run.report_json


def record_read(run: PocRun, user, kind: str, download: bool) -> None:
    artifact = report_artifact(run, kind)
    _emit(
        MODEL_POC_REPORT_READ,
        run,
        actor=user,
        kind=kind,
        download=download,
        sha256=artifact.sha256 if artifact else None,
    )
