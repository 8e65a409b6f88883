"""The audit actions the compliance pages write (registered with the log's vocabulary on import)."""

from __future__ import annotations

from audit.actions import register


def _timeline_summary(entry: dict) -> str:
    payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
    shown = payload.get("thumbnails") if isinstance(payload.get("thumbnails"), dict) else {}
    what = f" with {len(shown)} thumbnail(s): {', '.join(sorted(shown))}" if shown else ""
    subject = str(entry.get("subject", ""))
    job = "job " + subject.removeprefix("job:")[:8] if subject.startswith("job:") else subject
    return f"{entry.get('actor') or 'system'} opened the timeline of {job}{what}"


# One event per timeline page view: it names every thumbnail the page renders, so the
# thumbnails themselves are not logged one by one (they were a third of all events).
TIMELINE_VIEWED = register(
    "compliance.timeline_viewed",
    "a reviewer opened a job's timeline (with the thumbnails it shows)",
    _timeline_summary,
)
