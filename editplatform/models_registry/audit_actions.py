"""The audit actions the model registry writes (registered with the log's vocabulary on import).

Every event's subject is ``model:<version>`` (the manifest's SHA-256), so a reviewer
filters one version's whole history; the payload names the bundle hash each decision
was bound to.
"""

from __future__ import annotations

from audit.actions import register
from audit.subjects import register_prefix

register_prefix("model:")
register_prefix("poc:")


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


def _poc_summary(verb: str):
    def render(entry: dict) -> str:
        payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
        version = str(entry.get("subject", "")).removeprefix("model:")[:12]
        text = (
            f"{entry.get('actor') or 'system'} {verb} a proof of concept of {version} on "
            f"{payload.get('photos', '?')} photos"
        )
        if payload.get("outcome"):
            text += f": {payload['outcome']}"
        return text

    return render


MODEL_POC_STARTED = register(
    "model.poc_started",
    "an admin started a proof-of-concept report of a model version on uploaded photos",
    _poc_summary("started"),
)
MODEL_POC_FINISHED = register(
    "model.poc_finished",
    "a proof-of-concept run ended (succeeded with its report's hashes, or failed)",
    _poc_summary("finished"),
)
MODEL_POC_REPORT_READ = register(
    "model.poc_report_read",
    "an admin opened or downloaded a proof-of-concept report",
    _poc_summary("read the report of"),
)
