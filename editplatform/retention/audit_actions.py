"""The audit actions of retention, legal holds and erasure requests."""

from __future__ import annotations

from audit.actions import register
from audit.subjects import register_prefix

register_prefix("hold:")
register_prefix("erasure:")


def _payload(entry: dict) -> dict:
    payload = entry.get("payload")
    return payload if isinstance(payload, dict) else {}


def _who(entry: dict) -> str:
    return entry.get("actor") or "system"


RETENTION_RAN = register(
    "retention.ran",
    "the periodic retention run shredded the artifacts that were due",
    lambda e: (
        f"retention shredded {_payload(e).get('shredded', '?')} artifact(s), "
        f"{_payload(e).get('blocked', '?')} blocked by legal hold"
    ),
)
HOLD_PLACED = register(
    "legal_hold.placed",
    "a reviewer placed a legal hold on a job: its artifacts cannot be shredded",
    lambda e: f"{_who(e)} placed legal hold {_payload(e).get('hold', '?')} on {e.get('subject')}",
)
HOLD_LIFT_REQUESTED = register(
    "legal_hold.lift_requested",
    "a reviewer asked to lift a legal hold (a second reviewer must confirm)",
    lambda e: f"{_who(e)} asked to lift legal hold {_payload(e).get('hold', '?')}",
)
HOLD_LIFTED = register(
    "legal_hold.lifted",
    "a second reviewer confirmed lifting a legal hold",
    lambda e: f"{_who(e)} lifted legal hold {_payload(e).get('hold', '?')} (four eyes)",
)
ERASURE_REQUESTED = register(
    "erasure.requested",
    "a reviewer recorded a data-subject erasure request for some jobs",
    lambda e: f"{_who(e)} recorded erasure request {e.get('subject')}",
)
ERASURE_APPROVED = register(
    "erasure.approved",
    "a second reviewer approved an erasure request; its jobs' artifacts are shredded",
    lambda e: f"{_who(e)} approved {e.get('subject')}",
)
ERASURE_CERTIFIED = register(
    "erasure.certified",
    "the signed erasure certificate of a request was issued (its hash is recorded)",
    lambda e: f"certificate of {e.get('subject')} issued",
)
ERASURE_PHOTO_LOOKUP = register(
    "erasure.photo_lookup",
    "a reviewer looked up which jobs made images like a photo a data subject supplied "
    "(candidates for an erasure request; the check itself is its provenance.checked event)",
    lambda e: (
        f"{_who(e)} looked up a data subject's photo: "
        f"{len(_payload(e).get('candidates', []))} candidate job(s)"
    ),
)
