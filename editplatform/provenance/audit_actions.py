"""The audit actions the provenance app writes (registered with the log's vocabulary)."""

from __future__ import annotations

from audit.actions import register

PROVENANCE_CHECKED = register(
    "provenance.checked", "someone asked whether an image was made here; the answer is recorded"
)
PROVENANCE_MARKED = register(
    "provenance.marked",
    "a released output was watermarked, fingerprinted and signed (C2PA); "
    "the payload names the marked bytes' SHA-256",
)
PROVENANCE_MARK_FAILED = register(
    "provenance.mark_failed",
    "marking a released output failed; the job stays released and the sweep retries it",
)
