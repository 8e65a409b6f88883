"""The audit actions the approvals app writes (registered with the log's vocabulary on import)."""

from __future__ import annotations

from audit.actions import register


def _summary(verb: str, field: str):
    def render(entry: dict) -> str:
        payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
        job = str(entry.get("subject", "")).removeprefix("job:")[:8]
        text = str(payload.get(field) or "").strip().replace("\n", " ")
        count = (
            f" ({payload['approvals']}/{payload['required']})"
            if verb == "approved" and "required" in payload
            else ""
        )
        return f"{entry.get('actor') or 'system'} {verb} job {job}{count}" + (
            f": “{text[:120]}”" if text else ""
        )

    return render


JOB_APPROVED = register(
    "job.approved", "an approver approved a job's parameters", _summary("approved", "comment")
)
JOB_REJECTED = register(
    "job.rejected", "an approver rejected a job, with a reason", _summary("rejected", "reason")
)
