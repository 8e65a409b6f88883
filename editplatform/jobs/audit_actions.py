"""The audit actions the jobs app writes (registered with the log's vocabulary on import).

Each carries a one-line summary rendered from the entry (who, what, which job), which
the reviewer's event list and the job timeline show for every row.
"""

from __future__ import annotations

from audit.actions import register
from audit.subjects import register_prefix

# Artifact events name the job as their main subject and `artifact:<sha256>` as an extra one.
register_prefix("artifact:")
register_prefix("job:")


def _job(entry: dict) -> str:
    subject = str(entry.get("subject", ""))
    return (
        "job " + subject.removeprefix("job:")[:8]
        if subject.startswith("job:")
        else subject or "a job"
    )


def _actor(entry: dict) -> str:
    return entry.get("actor") or "system"


def _payload(entry: dict) -> dict:
    payload = entry.get("payload")
    return payload if isinstance(payload, dict) else {}


def _edits(entry: dict) -> str:
    edits = _payload(entry).get("edits")
    if not isinstance(edits, dict) or not edits:
        return "no edits"
    return ", ".join(
        f"{name} {strength:+g}" if isinstance(strength, int | float) else f"{name} {strength}"
        for name, strength in sorted(edits.items())
    )


def _summary(template: str):
    """A summary function: `template` formatted with actor, job, edits and payload fields."""

    def render(entry: dict) -> str:
        payload = _payload(entry)
        fields = {
            key: value for key, value in payload.items() if isinstance(value, str | int | float)
        }
        sha = str(payload.get("sha256", ""))
        fields.update(
            actor=_actor(entry),
            job=_job(entry),
            edits=_edits(entry),
            sha=sha[:12],
            kind=payload.get("kind", "artifact"),
            via=payload.get("via") or payload.get("purpose") or "",
        )
        text = template.format_map(_Missing(fields))
        return text.replace(" ()", "").strip()

    return render


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "?"


JOB_SUBMITTED = register(
    "job.submitted",
    "a job was submitted with its original and edits",
    _summary("{actor} submitted {job} ({edits})"),
)
JOB_QUEUED = register(
    "job.queued", "a job was handed to the GPU queue", _summary("{job} was queued for a GPU worker")
)
JOB_STARTED = register(
    "job.started", "a worker started a job", _summary("{actor} started {job} (attempt {attempt})")
)
JOB_SUCCEEDED = register(
    "job.succeeded",
    "a job finished; its latent, outputs and model are recorded",
    _summary("{job} finished; outputs recorded ({edits})"),
)
JOB_FAILED = register("job.failed", "a job failed", _summary("{job} failed: {error_code}"))
JOB_CANCELLED = register(
    "job.cancelled", "a job was cancelled", _summary("{actor} cancelled {job} while {while}")
)
JOB_APPROVAL_REQUIRED = register(
    "job.approval_required",
    "the worker's re-check sent a job back for approval",
    _summary("{job} was sent back for approval: {reason}"),
)
JOB_DOMAIN_CHECKED = register(
    "job.domain_checked",
    "the domain gate judged a job's aligned photo; the report and the decision",
    _summary("domain gate on {job}: {decision}"),
)
JOB_HELD = register(
    "job.held",
    "a job was computed; its outputs are held until an approver releases them",
    _summary("{job} computed; outputs held for approval ({edits})"),
)
JOB_RELEASED = register(
    "job.released",
    "an approval released a held job's outputs to its requester",
    _summary("{actor}'s approval released the outputs of {job}"),
)
JOB_EXPIRED = register(
    "job.expired",
    "a held job was not decided in time; its outputs are destroyed",
    _summary("{job} expired undecided after {ttl_hours} h"),
)
JOB_OUTPUTS_DESTROYED = register(
    "job.outputs_destroyed",
    "a job's held outputs were deleted from storage (hashes stay in the log)",
    _summary("held outputs of {job} destroyed ({reason})"),
)
ARTIFACT_VIEWED = register(
    "artifact.viewed",
    "someone viewed a job's artifact",
    _summary("{actor} viewed the {kind} of {job} ({via})"),
)
ARTIFACT_DOWNLOADED = register(
    "artifact.downloaded",
    "someone downloaded a job's artifact",
    _summary("{actor} downloaded the {kind} of {job} ({via})"),
)
JOB_ARTIFACTS_MISSING = register(
    "job.artifacts_missing",
    "a job's stored bytes are gone (e.g. after a restore); named by kind and hash",
    _summary("stored bytes of {job} are missing"),
)
ARTIFACT_SHREDDED = register(
    "artifact.shredded",
    "an artifact was crypto-shredded: its data key and ciphertext destroyed (retention, erasure)",
    _summary("{kind} of {job} shredded by {actor} ({reason})"),
)
