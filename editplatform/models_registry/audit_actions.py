"""The audit actions the model registry writes (registered with the log's vocabulary on import).

Every event's subject is ``model:<version>`` (the manifest's SHA-256), so a reviewer
filters one version's whole history; the payload names the bundle hash each decision
was bound to.
"""

from __future__ import annotations

from audit.actions import register
from audit.subjects import register_prefix

register_prefix("model:")


def _summary(verb: str):
    def render(entry: dict) -> str:
        payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
        version = str(entry.get("subject", "")).removeprefix("model:")[:12]
        name = payload.get("name") or "model"
        text = f"{entry.get('actor') or 'system'} {verb} {name} {version}"
        previous = payload.get("replaced")
        if previous:
            text += f" (replacing {str(previous)[:12]})"
        return text

    return render


MODEL_REGISTERED = register(
    "model.registered",
    "a model bundle was verified and registered with its model card",
    _summary("registered"),
)
MODEL_APPROVED = register(
    "model.approved",
    "a model approver approved a version for activation, bound to its bundle hash",
    _summary("approved"),
)
MODEL_ACTIVATED = register(
    "model.activated",
    "an admin activated an approved model version (four-eyes); new jobs use it",
    _summary("activated"),
)
MODEL_DEACTIVATED = register(
    "model.deactivated",
    "an active model version was replaced by another and went back to registered",
    _summary("deactivated"),
)
MODEL_RETIRED = register(
    "model.retired", "a model version was retired: no job runs with it again", _summary("retired")
)
MODEL_BOOTSTRAPPED = register(
    "model.bootstrapped",
    "first start: the configured bundle was registered and activated without four-eyes",
    _summary("bootstrapped"),
)
