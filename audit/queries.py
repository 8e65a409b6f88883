"""Reading the log for people and integrations: event filters and inclusion status.

Shared by the reviewer's pages (`audit.views`) and the REST API (`audit.api`), so
both filter the same way and give the same "verified" mark.
"""

from __future__ import annotations

import base64
import datetime as dt

from django.db.models import Q, Subquery

from audit import log as audit_log
from audit import signing, subjects, tlog
from audit.checkpoint import CheckpointError, open_checkpoint
from audit.models import AuditEvent, AuditEventSubject, LogHead


def seq_bound(first_at_or_after: dt.datetime) -> int:
    """The first seq whose time is >= the instant (times are monotonic along the log)."""
    found = (
        AuditEvent.objects.filter(created_at__gte=first_at_or_after)
        .order_by("created_at", "seq")
        .values_list("seq", flat=True)
        .first()
    )
    return found if found is not None else audit_log.read_head().size


def subject_filter(subject: str) -> Q:
    """Events naming ``subject`` as their main subject or as one of their extra subjects.

    A bare value (no registered prefix, e.g. a job's UUID or an artifact's SHA-256)
    also matches every registered prefix followed by it, so reviewers can paste an id
    or a hash as they find it.
    """
    candidates = subjects.expand_with_aliases(subject)
    extra = AuditEventSubject.objects.filter(subject__in=candidates).values("seq")
    return Q(subject__in=candidates) | Q(seq__in=extra)


def filter_events(
    *,
    seq: int | None = None,
    actor: str = "",
    action: str = "",
    subject: str = "",
    request_id: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
):
    """Events matching every given filter (unordered); `since` is inclusive, `until` exclusive.

    Each column filter has an index on (column, seq); time bounds become seq bounds
    (one indexed lookup each), so any combination stays a range scan on seq.
    """
    # Only the log: a row at or beyond the head was written around the triggers and is
    # never shown as genuine (`audit verify` names it). One subquery, no extra round trip.
    head_size = LogHead.objects.filter(id=1).values("size")[:1]
    events = AuditEvent.objects.filter(seq__lt=Subquery(head_size))
    if seq is not None:
        events = events.filter(seq=seq)
    if actor:
        events = events.filter(actor_name=actor)
    if action:
        events = events.filter(action=action)
    if subject:
        events = events.filter(subject_filter(subject))
    if request_id:
        events = events.filter(request_id=request_id)
    if since is not None:
        events = events.filter(seq__gte=seq_bound(since))
    if until is not None:
        events = events.filter(seq__lt=seq_bound(until))
    return events


def inclusion_status(event: AuditEvent) -> dict:
    """Prove `event` against the latest signed checkpoint; say exactly what was checked.

    Keys: verified, reason (why not), checkpoint (the opened checkpoint body), note
    (the signed note as stored), proof (base64 hashes, leaf level first), root_b64.
    """
    status = {
        "verified": False,
        "reason": "",
        "checkpoint": None,
        "note": None,
        "proof": [],
        "root_b64": None,
    }
    if event.seq >= audit_log.read_head().size:
        status["reason"] = (
            "beyond the log's head: this row is not part of the log (written around its guards)"
        )
        return status
    checkpoint = audit_log.latest_checkpoint()
    if checkpoint is None or checkpoint.size <= event.seq:
        status["reason"] = "not yet covered by a signed checkpoint (the next one will include it)"
        return status
    status["note"] = checkpoint.note
    try:
        signed = open_checkpoint(checkpoint.note, signing.get_verifier(), signing.origin())
        leaf = tlog.hash_leaf(event.entry.encode("utf-8"))
        if leaf != bytes(event.leaf_hash):
            raise tlog.ProofError("the entry does not match its stored leaf hash")
        proof = audit_log.inclusion_proof(event.seq, signed.size)
        tlog.verify_inclusion(leaf, event.seq, signed.size, proof, signed.root_hash)
    except (CheckpointError, tlog.ProofError, audit_log.TreeError) as exc:
        status["reason"] = str(exc)
        return status
    status.update(
        verified=True,
        checkpoint=signed,
        proof=[base64.b64encode(h).decode() for h in proof],
        root_b64=base64.b64encode(signed.root_hash).decode(),
    )
    return status
