"""The audit actions the provenance app writes (registered with the log's vocabulary)."""

from __future__ import annotations

from audit.actions import register

PROVENANCE_CHECKED = register(
    "provenance.checked", "someone asked whether an image was made here; the answer is recorded"
)
