"""Marking released outputs and answering "was this made here?".

`mark_output` is the one call the job pipeline makes when a job's outputs are released:
watermark (a fresh key, recorded), fingerprint (recorded), then a signed C2PA manifest
whose audit assertion names the job's audit event and carries its inclusion proof in a
signed checkpoint — so the proof can be checked offline (audit/verify_output.py).

`check_image` reads all three signals from any uploaded image and resolves them only
through the platform's own tables (a watermark key, a fingerprint, a manifest's job id
are claims until a row confirms them); the check itself is an audit event.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from PIL import Image

from audit.log import append_event, inclusion_proof, make_checkpoint
from audit.models import AuditEvent
from audit.models import Checkpoint as StoredCheckpoint
from editplatform.jobs import keyed_ids
from editplatform.jobs.models import EditJob
from editplatform.provenance import check_keys, fingerprint, index, manifest, signing, watermark
from editplatform.provenance.audit_actions import PROVENANCE_CHECKED
from editplatform.provenance.models import Fingerprint, WatermarkKey

SOFTWARE = "StyleLedger"
SOFTWARE_VERSION = "0.1.0"
ASSERTION_VERSION = 1
NEAREST_SCAN_LIMIT = 100_000


@dataclass(frozen=True)
class MarkedOutput:
    data: bytes
    manifest_info: dict
    watermark_key: int
    fingerprints: fingerprint.Fingerprints

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _covering_checkpoint(seq: int) -> StoredCheckpoint:
    """The oldest signed checkpoint that includes leaf `seq`; sign one if none does yet."""
    found = StoredCheckpoint.objects.filter(size__gt=seq).order_by("size").first()
    if found is not None:
        return found
    checkpoint = make_checkpoint()
    if checkpoint.size <= seq:  # pragma: no cover - the event is committed before marking
        raise RuntimeError(f"audit event {seq} is not in the log yet")
    return checkpoint


def audit_assertion(job: EditJob, event: AuditEvent) -> dict:
    checkpoint = _covering_checkpoint(event.seq)
    proof = inclusion_proof(event.seq, checkpoint.size)
    # The original and upload are named by keyed values, as in the log (issue 17): a
    # released image must not let a copy of an erased original be confirmed.
    return keyed_ids.keyed_payload(
        {
            "version": ASSERTION_VERSION,
            "job_id": str(job.pk),
            "original_sha256": job.original_id,
            "upload_sha256": job.upload_sha256,
            "model_version": job.model_version,
            "event": {
                "seq": event.seq,
                "action": event.action,
                "leaf_hash": bytes(event.leaf_hash).hex(),
            },
            "checkpoint": {
                "size": checkpoint.size,
                "note": checkpoint.note,
                "inclusion_proof": [base64.b64encode(p).decode() for p in proof],
            },
        }
    )


def _encode_like(image: Image.Image, original: bytes) -> bytes:
    buffer = io.BytesIO()
    if manifest.mime_of(original) == "image/jpeg":
        image.save(buffer, format="JPEG", quality=95)
    else:
        image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _fresh_key() -> int:
    while True:
        key = secrets.randbits(8 * watermark.KEY_BYTES)
        if not WatermarkKey.objects.filter(key=key).exists():
            return key


@dataclass(frozen=True)
class MarkContext:
    """What every output of one job is marked with: its original's bytes (the manifest's
    ingredient) and the audit assertion of its release event (a checkpoint, an inclusion
    proof and keyed ids: several reads). A job with a full-resolution result has two
    outputs to mark; reading these once serves both."""

    original: bytes
    assertion: dict


def mark_context(job: EditJob, audit_event: AuditEvent) -> MarkContext:
    """Read what :func:`mark_output` needs of `job` besides the output itself."""
    from editplatform.jobs import artifacts

    return MarkContext(artifacts.read(job.original), audit_assertion(job, audit_event))


def mark_output(
    job: EditJob,
    image_bytes: bytes,
    *,
    audit_event: AuditEvent,
    context: MarkContext | None = None,
) -> MarkedOutput:
    """Watermark, fingerprint and sign one released output of `job`; record key and hashes.

    `audit_event` is the committed event the output's provenance points at (the job's
    `job.succeeded`); `context` its :func:`mark_context` when the caller marks several
    outputs of the job. Runs in its own transaction: the key and fingerprint rows commit
    together or not at all. Returns the bytes to release in place of `image_bytes`.
    """
    image = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    context = context or mark_context(job, audit_event)
    original, assertion = context.original, context.assertion
    edits = [
        {"name": name, "strength": strength} for name, strength in sorted((job.edits or {}).items())
    ]
    definition = manifest.build_definition(
        title=f"StyleLedger job {job.pk}",
        software=SOFTWARE,
        software_version=SOFTWARE_VERSION,
        model_version=job.model_version or "",
        edits=edits,
        audit=assertion,
    )
    for _ in range(5):
        key = _fresh_key()
        marked = watermark.embed(
            image,
            key,
            seed=settings.PROVENANCE_WATERMARK_SEED,
            strength=settings.PROVENANCE_WATERMARK_STRENGTH,
        )
        prints = fingerprint.compute(marked)
        signed = manifest.sign_image(
            _encode_like(marked, image_bytes), definition, signing.material(), original=original
        )
        digest = hashlib.sha256(signed).hexdigest()
        try:
            with transaction.atomic():
                WatermarkKey.objects.create(
                    key=key, job=job, marked_sha256=digest, manifest=assertion
                )
                for kind, value in (
                    (Fingerprint.Kind.PDQ, prints.pdq),
                    (Fingerprint.Kind.ROT, prints.rot),
                ):
                    Fingerprint.objects.create(
                        job=job,
                        marked_sha256=digest,
                        kind=kind,
                        value=value,
                        **index.chunk_columns(value),
                    )
        except IntegrityError:  # another worker drew the same key meanwhile: draw again
            continue
        return MarkedOutput(signed, assertion, key, prints)
    raise RuntimeError("could not draw an unused watermark key")


# --- "was this made here?" ----------------------------------------------------------------


@dataclass
class CheckResult:
    sha256: str
    manifest: dict
    watermark: dict
    fingerprints: dict
    jobs: list[dict] = field(default_factory=list)
    audit_seq: int | None = None

    @property
    def made_here(self) -> bool:
        return bool(self.jobs)

    def as_dict(self) -> dict:
        return {
            "made_here": self.made_here,
            "sha256": self.sha256,
            "jobs": self.jobs,
            "manifest": self.manifest,
            "watermark": self.watermark,
            "fingerprints": self.fingerprints,
            "audit_seq": self.audit_seq,
        }

    def public_dict(self) -> dict:
        """The data-free answer: made here or not, the job references, and per job the audit
        log entry its released output points at (event index, leaf hash, the signed
        checkpoint that includes it) so anyone can verify it against a published
        checkpoint. No people, purposes, edits or evidence."""
        references = []
        for job in self.jobs:
            for proof in job.get("proofs", [])[:1]:
                references.append(
                    {
                        "job_id": job["job_id"],
                        "audit_seq": proof["event"]["seq"],
                        "leaf_hash": proof["event"]["leaf_hash"],
                        "checkpoint_size": proof["checkpoint"]["size"],
                    }
                )
        return {
            "made_here": self.made_here,
            "jobs": [job["job_id"] for job in self.jobs],
            "audit": references,
        }


def _job_summary(job: EditJob, evidence: list[str]) -> dict:
    events = AuditEvent.objects.filter(subject=f"job:{job.pk}").order_by("seq")
    timeline = [
        {"seq": e.seq, "action": e.action, "actor": e.actor_name, "at": e.created_at.isoformat()}
        for e in events
    ]
    approvals = [e for e in timeline if e["action"] in ("job.approved", "job.rejected")]
    return {
        "job_id": str(job.pk),
        "requester": job.requester.get_username(),
        "purpose": job.purpose,
        "edits": job.edits,
        "model_version": job.model_version,
        "state": job.state,
        "created_at": job.created_at.isoformat(),
        "approvals": approvals,
        "evidence": evidence,
        "audit": timeline,
        "proofs": [
            k.manifest for k in WatermarkKey.objects.filter(job=job).order_by("created_at")[:5]
        ],
    }


@dataclass(frozen=True)
class JobMatch:
    """One job whose released output matches an image, and why."""

    job_id: str
    evidence: tuple[str, ...]  # "manifest (Trusted)", "watermark key ...", "pdq distance 12"
    closest: int  # -1: a resolved watermark key; else the smallest fingerprint distance


@dataclass
class _Signals:
    manifest: dict
    watermark: dict
    fingerprints: dict
    prints: fingerprint.Fingerprints
    matches: list[JobMatch]


def _signals(data: bytes, pixels: Image.Image) -> _Signals:
    """Read manifest, watermark and fingerprints; resolve them through our own tables."""
    evidence: dict[str, list[str]] = {}
    closest: dict[str, int] = {}
    report = manifest.read_image(data, anchors_pem=signing.trust_anchors())
    manifest_info = report.as_dict()
    if report.trusted and report.audit and isinstance(report.audit.get("job_id"), str):
        # Trusted: our key signed it. The job id must still name a row (and a key row
        # with this assertion: a job we marked).
        if WatermarkKey.objects.filter(job_id=_uuid_or_none(report.audit["job_id"])).exists():
            evidence.setdefault(report.audit["job_id"], []).append("manifest (Trusted)")

    detection = watermark.detect(pixels, seed=settings.PROVENANCE_WATERMARK_SEED)
    watermark_info = {
        "decoded": detection.key is not None,
        "key": None,
        "resolved": False,
        "angle": detection.angle,
        "scale": detection.scale,
        "crop": list(detection.crop) if detection.crop else None,
    }
    if detection.key is not None:
        watermark_info["key"] = f"{detection.key:08x}"
        row = WatermarkKey.objects.filter(key=detection.key).first()
        if row is not None:
            watermark_info["resolved"] = True
            evidence.setdefault(str(row.job_id), []).append(f"watermark key {detection.key:08x}")
            closest[str(row.job_id)] = -1  # a resolved key outranks any distance

    prints = fingerprint.compute(pixels)
    limit = settings.PROVENANCE_MATCH_DISTANCE
    rot_limit = min(limit, fingerprint.ROT_MATCH_DISTANCE)
    fp_info: dict = {
        "threshold": limit,
        "rot_threshold": rot_limit,
        "rot_needs_pdq_within": fingerprint.ROT_PDQ_AGREEMENT,
        "nearest": {},
    }
    for kind, value in ((Fingerprint.Kind.PDQ, prints.pdq), (Fingerprint.Kind.ROT, prints.rot)):
        matches = index.search(kind, value, limit if kind == Fingerprint.Kind.PDQ else rot_limit)
        if kind == Fingerprint.Kind.ROT:
            matches = [m for m in matches if _pdq_agrees(m, prints.pdq, limit)]
        fp_info["nearest"][kind] = [
            {"job_id": str(m.job_id), "distance": m.distance} for m in matches
        ]
        for match in matches:
            if match.job_id is not None:
                evidence.setdefault(str(match.job_id), []).append(
                    f"{kind} distance {match.distance}"
                )
                key = str(match.job_id)
                closest[key] = min(closest.get(key, match.distance), match.distance)
    # best first: the most independent pieces of evidence, then the closest match (near
    # duplicates of one photo can all fall within the threshold)
    found = [
        JobMatch(job_id, tuple(ev), closest.get(job_id, 257)) for job_id, ev in evidence.items()
    ]
    found.sort(key=lambda m: (-len(m.evidence), m.closest))
    return _Signals(manifest_info, watermark_info, fp_info, prints, found)


def _pdq_agrees(match: index.Match, pdq: bytes, pdq_limit: int) -> bool:
    """`fingerprint.is_match` for a rotation-tolerant match: PDQ of the same stored output
    (its row of kind pdq with the same marked bytes) must lie within the agreement bound."""
    values = Fingerprint.objects.filter(
        kind=Fingerprint.Kind.PDQ, job_id=match.job_id, marked_sha256=match.marked_sha256
    ).values_list("value", flat=True)
    return any(
        fingerprint.is_match(
            fingerprint.distance(pdq, bytes(v)), match.distance, pdq_limit=pdq_limit
        )
        for v in values
    )


def find_matching_jobs(data: bytes) -> list[JobMatch]:
    """Jobs whose released outputs match this image, best first — the lookup other parts
    of the platform build on (e.g. a data subject's request: "which jobs made images
    like this one?").

    Validates `data` like any upload (DomainError, 4xx, for bad input), then reads the
    C2PA manifest, the watermark and the fingerprints and resolves each only through the
    platform's own tables. Records nothing: the caller writes its own audit event.
    """
    from editplatform.jobs.uploads import validate_image

    validated = validate_image(data)
    pixels = Image.open(io.BytesIO(validated.png)).convert("RGB")
    found = _signals(data, pixels).matches
    ids = EditJob.objects.filter(pk__in=[m.job_id for m in found]).values_list("pk", flat=True)
    existing = {str(pk) for pk in ids}
    return [m for m in found if m.job_id in existing]


def analyse(data: bytes, pixels: Image.Image) -> CheckResult:
    """Read manifest, watermark and fingerprints of an image; resolve them to jobs."""
    signals = _signals(data, pixels)
    fp_info = signals.fingerprints
    if not any(fp_info["nearest"].values()):
        fp_info["nearest_distance"] = _nearest_distances(signals.prints)
    evidence = {m.job_id: list(m.evidence) for m in signals.matches}
    rank = {m.job_id: i for i, m in enumerate(signals.matches)}
    jobs = EditJob.objects.select_related("requester").filter(pk__in=list(evidence))
    summaries = [_job_summary(job, evidence[str(job.pk)]) for job in jobs]
    summaries.sort(key=lambda s: rank[s["job_id"]])
    return CheckResult(
        hashlib.sha256(data).hexdigest(),
        signals.manifest,
        signals.watermark,
        fp_info,
        summaries,
    )


def _nearest_distances(prints: fingerprint.Fingerprints) -> dict:
    """For a "no match" answer: the distance to the nearest stored hash (any distance).

    Only where a full scan is cheap; on a large index the answer is "more than the
    threshold" (None), which is what the indexed search already proved."""
    out: dict = {}
    if Fingerprint.objects.count() > NEAREST_SCAN_LIMIT:
        return {"pdq": None, "rot": None}
    for kind, value in ((Fingerprint.Kind.PDQ, prints.pdq), (Fingerprint.Kind.ROT, prints.rot)):
        nearest = index.search(kind, value, fingerprint.BITS, limit=1)
        out[kind] = nearest[0].distance if nearest else None
    return out


def _uuid_or_none(text: str):
    import uuid

    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def check_image(data: bytes, *, actor=None, channel: str = "portal") -> CheckResult:
    """Validate an upload, analyse it and record the check in the audit log."""
    from editplatform.jobs.uploads import validate_image

    validated = validate_image(data)  # raises DomainError (4xx) for bad input
    pixels = Image.open(io.BytesIO(validated.png)).convert("RGB")
    result = analyse(data, pixels)
    job_ids = [job["job_id"] for job in result.jobs]
    with transaction.atomic():
        # keyed under a per-check salt, never the plain hash (check_keys: erasure)
        key = check_keys.new_key(job_ids)
        image = check_keys.recorded_fields(key, result.sha256)
        event = append_event(
            PROVENANCE_CHECKED,
            actor=actor,
            subject=f"image:{image['sha256']}",
            payload={
                "channel": channel,
                **image,
                "made_here": result.made_here,
                "jobs": [job["job_id"] for job in result.jobs],
                "manifest_state": result.manifest.get("state")
                or ("absent" if not result.manifest["present"] else ""),
                "watermark_key": result.watermark.get("key"),
            },
        )
    result.audit_seq = event.seq
    return result
