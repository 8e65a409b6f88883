"""The audit log's vocabulary: a registry of every action an event may record.

The log knows no domain words. Each app registers the actions it writes (as NetBox
registers event types and Wagtail its log actions), from a module its
`AppConfig.ready()` imports (here: `<app>/audit_actions.py`):

    ITEM_SOLD = register("shop.item_sold", "an item was sold")

`append_event` refuses any unregistered name (`UnknownActionError`), so a typo cannot
create an action that the reviewer's filters and reports do not know about. The only
names defined here are the log's own.

A registration may carry a `summary`: a format string over the entry's fields
(`{actor}`, `{subject}`, and every payload key, e.g. `"{actor} sold {item}"`) or a
function of the entry dict. :func:`summarize` renders it for each row the reviewer
reads; a missing field reads `?` and a failing function falls back to the
description, so a summary never hides the row.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field

# Later words may start with a digit ("user.2fa_failed", issue 11's event names).
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9][a-z0-9_]*)+$")
MAX_LENGTH = 64  # audit_event.action is varchar(64)


class UnknownActionError(ValueError):
    """An event names an action no app registered."""


class ActionRegistrationError(ValueError):
    """A malformed action name, or one registered twice with different meanings."""


Summary = str | Callable[[dict], str] | None


@dataclass(frozen=True)
class Action:
    name: str
    description: str
    summary: Summary = field(default=None, compare=False)


class ActionRegistry:
    """Action name -> description; registration is idempotent for identical entries."""

    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}

    def register(self, name: str, description: str, summary: Summary = None) -> str:
        if not isinstance(name, str) or len(name) > MAX_LENGTH or not _NAME.match(name):
            raise ActionRegistrationError(
                f"audit action {name!r} must be dotted lower-case words ('app.verb'), "
                f"at most {MAX_LENGTH} characters"
            )
        existing = self._actions.get(name)
        if existing is not None and existing.description != description:
            raise ActionRegistrationError(
                f"audit action {name!r} is already registered as {existing.description!r}"
            )
        self._actions[name] = Action(name, description, summary or (existing and existing.summary))
        return name

    def get(self, name: str) -> Action | None:
        return self._actions.get(name)

    def validate(self, name: str) -> str:
        if name not in self._actions:
            raise UnknownActionError(
                f"unknown audit action {name!r}; registered: {', '.join(self.names())}"
            )
        return name

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._actions))


registry = ActionRegistry()
register = registry.register
validate = registry.validate


class _Fields(dict):
    """Format fields of an entry: a missing one reads '?' instead of raising."""

    def __missing__(self, key: str) -> str:
        return "?"


def _short(value) -> str:
    """Hashes and ids are shortened in one-line summaries (the row shows them in full)."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    if re.fullmatch(r"[0-9a-f]{64}", text):
        return text[:12]
    return text


def summarize(entry: dict) -> str:
    """The one-line summary of an event entry (see the module docstring)."""
    action = registry.get(str(entry.get("action", "")))
    actor = entry.get("actor") or "system"
    if action is None:
        return f"{actor}: {entry.get('action', '?')}"
    payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
    try:
        if callable(action.summary):
            return str(action.summary(entry))
        if isinstance(action.summary, str):
            fields = _Fields({key: _short(value) for key, value in payload.items()})
            fields.update(actor=actor, subject=entry.get("subject", ""))
            return string.Formatter().vformat(action.summary, (), fields)
    except Exception:  # a summary must never hide the row
        pass
    return f"{actor}: {action.description}"


# The log's own actions.
AUDIT_EXPORTED = register("audit.exported", "a reviewer or operator exported events with proofs")
AUDIT_VERIFIED = register("audit.verified", "the whole log was verified")
AUDIT_CHECKPOINT = register("audit.checkpoint", "a checkpoint was signed on request")
AUDIT_ROLLBACK_ACKNOWLEDGED = register(
    "audit.rollback_acknowledged",
    "an operator acknowledged a restored (rolled-back) log; the fork is signed",
)
