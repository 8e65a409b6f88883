"""What the log records about artifacts: keyed commitments, never their plain SHA-256.

Why: an artifact's identity is the SHA-256 of its plaintext. A log that records it lets
anyone who reads the log (reviewers, holders of an export) and holds a copy of an
*erased* photo confirm that exactly those bytes were processed here: erasure would
leave a fingerprint behind. From the cut-over on (migration jobs 0010), every event is
rewritten before it is hashed (:func:`keyed_event`, registered with the audit log):

* every payload value and every ``artifact:<sha256>`` subject that names an artifact
  with a live key row becomes that artifact's **commitment** (HMAC-SHA256 of its
  plaintext under a key derived from its data key, :func:`editplatform.core.crypto.commitment`);
* hashes *derived* from the original (``upload_sha256``: the bytes as uploaded;
  ``params_sha256`` and ``outputs_sha256``, which bind the original's hash) become an
  HMAC under the original's per-artifact salt (:func:`editplatform.core.crypto.keyed_hash`);
* the payload says so: ``"artifact_ids": "keyed-v1"``.

While the artifact exists, its key row maps a commitment back to the artifact
(:func:`recorded_ids`), and a verifier can recompute the commitment from the bytes and
the data key (:func:`confirm`). Shredding deletes the key row, and with it the data key
and the salt: nothing recorded can then be recomputed from, or matched against, a copy.

Events written before the cut-over keep their plain hashes (the log never changes);
readers accept both (:func:`recorded_ids` maps the plain hash too).
"""

from __future__ import annotations

import contextlib
import contextvars
import re

from django.db.models import Q

from editplatform.core import crypto

HEX64 = re.compile(r"^[0-9a-f]{64}$")
MARKER = "artifact_ids"
SCHEME = "keyed-v1"
ARTIFACT_PREFIX = "artifact:"
DERIVED_FIELDS = ("upload_sha256", "params_sha256", "outputs_sha256")
"""Payload fields whose hash is computed from the original's (or from the upload): keyed
under the original's salt when the payload names the original (``original_sha256``)."""


_shared: contextvars.ContextVar[dict | None] = contextvars.ContextVar("keyed_ids", default=None)


@contextlib.contextmanager
def shared_lookups(known=()):
    """Within one transaction that writes several events about the same artifacts (a
    submit's ``job.submitted`` and ``job.queued``), look each hash up once: a hash found
    (or found absent) for one event is not queried again for the next. ``known``: key
    rows the caller has just written or read itself (no query for them at all)."""
    token = _shared.set(
        {
            row.sha256: (row.commitment, bytes(row.salt) if row.salt is not None else None)
            for row in known
        }
    )
    try:
        yield
    finally:
        _shared.reset(token)


def _collect(value, out: set[str]) -> None:
    if isinstance(value, str):
        if HEX64.match(value):
            out.add(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, out)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, out)


def _replace(value, mapping: dict[str, str]):
    if isinstance(value, str):
        return mapping.get(value, value)
    if isinstance(value, dict):
        return {key: _replace(item, mapping) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_replace(item, mapping) for item in value]
    return value


def _subject(subject: str, mapping: dict[str, str]) -> str:
    if subject.startswith(ARTIFACT_PREFIX):
        sha = subject[len(ARTIFACT_PREFIX) :]
        if sha in mapping:
            return ARTIFACT_PREFIX + mapping[sha]
    return subject


def keyed_event(action: str, subject: str, payload: dict, subjects: list[str]):
    """The audit-log event filter: plain artifact hashes -> keyed values (see module doc).

    One key lookup per event that carries 64-hex values (none for hashes already looked
    up under :func:`shared_lookups`); events that name no live artifact pass unchanged (a
    legacy artifact not encrypted yet has no key and no commitment).
    """
    return keyed_events([(action, subject, payload, subjects)])[0]


def _candidates(subject: str, payload, subjects: list[str]) -> set[str]:
    if not isinstance(payload, dict) or payload.get(MARKER):
        return set()
    candidates: set[str] = set()
    _collect(payload, candidates)
    for name in (subject, *subjects):
        if name.startswith(ARTIFACT_PREFIX):
            candidates.add(name[len(ARTIFACT_PREFIX) :])
    return {value for value in candidates if HEX64.match(value)}


def _live_keys(candidates: set[str]) -> dict[str, tuple[str, bytes | None]]:
    """{sha256: (commitment, salt)} of the candidates that have a live key row.

    Plain SQL, not the ORM: this runs on every audit append that names a hash, and the
    ORM's query building cost more CPU than the rest of the append (issue 18). Hashes
    already looked up under :func:`shared_lookups` are not queried again.
    """
    from django.db import connection

    from editplatform.jobs.models import ArtifactKey

    memo = _shared.get()
    missing = candidates if memo is None else candidates - memo.keys()
    found: dict[str, tuple[str, bytes | None]] = {}
    if missing:
        values = sorted(missing)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT sha256, commitment, salt FROM {ArtifactKey._meta.db_table} "
                f"WHERE sha256 IN ({', '.join(['%s'] * len(values))})",
                values,
            )
            found = {
                sha: (commitment, bytes(salt) if salt is not None else None)
                for sha, commitment, salt in cursor.fetchall()
            }
    if memo is None:
        return found
    memo.update({sha: found.get(sha) for sha in missing})
    return {sha: memo[sha] for sha in candidates if memo[sha] is not None}


def keyed_events(events: list[tuple]) -> list[tuple]:
    """:func:`keyed_event` for a group commit's events, with one key lookup for them all
    (registered as the log's batch filter)."""
    wanted = [_candidates(subject, payload, subjects) for _, subject, payload, subjects in events]
    rows = _live_keys(set().union(*wanted))
    out = []
    for (_, subject, payload, subjects), candidates in zip(events, wanted, strict=True):
        found = {sha: rows[sha] for sha in candidates if sha in rows}
        if not found:
            out.append((subject, payload, subjects))
            continue
        mapping = {sha: commitment for sha, (commitment, _) in found.items()}
        anchor = found.get(payload.get("original_sha256"))
        keyed = _replace(payload, mapping)
        if anchor is not None and anchor[1]:
            for name in DERIVED_FIELDS:
                # from the plain value: an upload stored byte for byte has the original's
                # hash, which the artifact mapping above has already turned into its
                # commitment
                value = payload.get(name)
                if isinstance(value, str) and HEX64.match(value):
                    keyed[name] = crypto.keyed_hash(anchor[1], name, value)
        keyed[MARKER] = SCHEME
        out.append((_subject(subject, mapping), keyed, [_subject(s, mapping) for s in subjects]))
    return out


def keyed_payload(payload: dict) -> dict:
    """:func:`keyed_event` for a record that is not an event (the C2PA assertion that
    travels inside a released image names the original and the upload the same way)."""
    return keyed_event("", "", payload, [])[1]


def recorded_names(sha: str) -> set[str]:
    """How a log event may name artifact ``sha``: its plain hash (events from before the
    cut-over, or an artifact with no key) or its commitment (while the key lives)."""
    from editplatform.jobs.models import ArtifactKey

    return {sha, *ArtifactKey.objects.filter(pk=sha).values_list("commitment", flat=True)}


def subject_aliases(subject: str) -> list[str]:
    """A search for ``artifact:<sha256>`` also finds the events that name the artifact by
    its commitment, while its key lives (a reviewer can still follow a known artifact;
    after shredding the link is gone, as intended)."""
    from editplatform.jobs.models import ArtifactKey

    if not subject.startswith(ARTIFACT_PREFIX):
        return []
    sha = subject[len(ARTIFACT_PREFIX) :]
    if not HEX64.match(sha):
        return []
    commitment = ArtifactKey.objects.filter(pk=sha).values_list("commitment", flat=True).first()
    return [ARTIFACT_PREFIX + commitment] if commitment else []


def register() -> None:
    from audit.log import batch_filter, register_event_filter
    from audit.subjects import register_aliases

    register_event_filter(batch_filter(keyed_events))
    register_aliases(subject_aliases)


# --- reading: what a recorded id stands for ------------------------------------------


def recorded_ids(job) -> dict[str, str]:
    """{id the log may record for one of ``job``'s artifacts: that artifact's SHA-256}.

    The plain hash (events from before the cut-over), the live commitment (while the
    key row exists), and the commitment its ``artifact.shredded`` event recorded (so a
    reviewer's timeline can still say which node was erased, from the job's own rows:
    the log alone cannot tell).
    """
    from editplatform.jobs.models import ArtifactKey
    from editplatform.jobs.shredding import artifacts_of

    fields = artifacts_of(job)
    out = {sha: sha for sha in fields.values()}
    for sha, commitment in ArtifactKey.objects.filter(pk__in=list(out)).values_list(
        "sha256", "commitment"
    ):
        out[commitment] = sha
    for event in shred_events(job):
        commitment = event.payload.get("commitment")
        for field in event.payload.get("kinds_by_job", {}).get(str(job.pk), []):
            if isinstance(commitment, str) and fields.get(field):
                out[commitment] = fields[field]
    return out


def shred_events(job):
    """The ``artifact.shredded`` events that name ``job`` (main subject or another one)."""
    from audit.models import AuditEvent, AuditEventSubject
    from editplatform.jobs.audit_actions import ARTIFACT_SHREDDED

    subject = f"job:{job.pk}"  # the main subject, or one of the others (indexed apart)
    seqs = AuditEventSubject.objects.filter(subject=subject).values("seq")
    return AuditEvent.objects.filter(
        Q(subject=subject) | Q(seq__in=seqs), action=ARTIFACT_SHREDDED
    ).order_by("seq")


def confirm(recorded: str, artifact) -> bool:
    """Does ``recorded`` (a value from an event) stand for ``artifact``? Checked, not looked up.

    A plain hash (old events) matches the artifact's SHA-256; a commitment is recomputed
    from the artifact's bytes and its data key, so a verifier trusts the bytes, not a
    table. After shredding there is no data key: False for every commitment.
    """
    from editplatform.jobs import artifacts
    from editplatform.jobs.models import ArtifactKey

    if recorded == artifact.sha256:
        return True
    key = ArtifactKey.objects.filter(pk=artifact.sha256).first()
    if key is None or artifact.erased_at is not None:
        return False
    plaintext = artifacts.read(artifact)
    return crypto.commitment(artifacts.unwrap(key), plaintext) == recorded


def confirm_derived(recorded: str, name: str, value: str, original) -> bool:
    """Does ``recorded`` (a keyed ``upload_sha256``/``params_sha256``/``outputs_sha256``)
    stand for ``value`` under ``original``'s salt? (Plain values of old events: equal.)"""
    from editplatform.jobs.models import ArtifactKey

    if recorded == value:
        return True
    key = ArtifactKey.objects.filter(pk=original.sha256).only("salt").first()
    if key is None or not key.salt:
        return False
    return crypto.keyed_hash(bytes(key.salt), name, value) == recorded
