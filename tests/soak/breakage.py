"""The soak's deliberately broken builds, and the guard that keeps them out of production.

A soak must be shown to fail when a guarantee is broken, so the test worker app can
break one on purpose. The switch is guarded so that no deployment can turn it on by
accident:

* only `python -m tests.soak --break MODE` turns it on: the harness writes a marker file
  into its own throwaway run folder naming the mode and the URL of the PostgreSQL
  server it started itself, and hands its workers SOAK_BREAK and SOAK_BREAK_MARKER;
* only the soak's worker app (`-A tests.soak.worker_app`) reads SOAK_BREAK. No module
  outside tests/ names it (tests/soak/test_breakage.py checks), the production app is
  `editplatform.celery`, and the images do not ship tests/;
* the worker app refuses to start (raises at import) when SOAK_BREAK is set without a
  marker that names the same mode and the very database the worker connects to, under
  STYLELEDGER_ENV=production, or with an unknown mode. An environment variable copied
  into a deployment therefore stops the worker loudly instead of breaking it silently.
"""

from __future__ import annotations

import json
from pathlib import Path

# mode -> what it breaks (the harness prints it in its report)
MODES = {
    "lease": "no lease fence: every job state change is an unconditional UPDATE, so a "
    "worker resumed after SIGSTOP commits although another worker took its job over",
    "acks": "acks early only: the edit task is acknowledged on receipt and not handed back "
    "when its worker dies; the sweeper still runs (a soak with this break is expected to "
    "pass: it measures what the sweeper alone covers)",
    "redelivery": "no redelivery of a dead worker's job: the edit task is acknowledged on "
    "receipt, not handed back when its worker dies, and the harness runs no sweeper (the "
    "second defence, which re-publishes a job whose lease expired)",
}
MARKER_NAME = "soak-break.json"


class BreakRefused(RuntimeError):
    """SOAK_BREAK is set outside a soak run that asked for it: the worker must not start."""


def write_marker(folder: Path, mode: str, database_url: str) -> Path:
    """The harness's permission slip for its own workers (in its throwaway run folder)."""
    if mode not in MODES:
        raise BreakRefused(f"unknown soak break {mode!r} (known: {', '.join(MODES)})")
    marker = folder / MARKER_NAME
    marker.write_text(json.dumps({"break": mode, "database": database_url}))
    return marker


def authorised_break(env: dict[str, str]) -> str | None:
    """The break mode a soak worker may apply, or None; raises BreakRefused when SOAK_BREAK
    is set anywhere but in a soak run that asked for exactly this break."""
    mode = env.get("SOAK_BREAK", "")
    if not mode:
        return None
    if mode not in MODES:
        raise BreakRefused(f"SOAK_BREAK={mode!r} is not a soak break ({', '.join(MODES)})")
    if env.get("STYLELEDGER_ENV") == "production":
        raise BreakRefused("SOAK_BREAK is set under STYLELEDGER_ENV=production")
    marker = Path(env.get("SOAK_BREAK_MARKER") or "/nonexistent")
    if marker.name != MARKER_NAME or not marker.is_file():
        raise BreakRefused(
            "SOAK_BREAK is set but no soak run asked for it (SOAK_BREAK_MARKER names no "
            f"{MARKER_NAME}): only `python -m tests.soak --break` may break a worker"
        )
    try:
        slip = json.loads(marker.read_text())
    except ValueError:
        raise BreakRefused(f"{marker} is not a soak break marker") from None
    if slip.get("break") != mode or slip.get("database") != env.get("DATABASE_URL"):
        raise BreakRefused(
            f"{marker} does not allow SOAK_BREAK={mode!r} against this database: "
            "the marker names another break or another database"
        )
    return mode
