"""The audit log's vocabulary: every action an event may record.

`append_event` refuses any other name, so a typo cannot create an action that the
reviewer's filters and reports do not know about.
"""

from __future__ import annotations

JOB_SUBMITTED = "job.submitted"
JOB_APPROVED = "job.approved"
JOB_REJECTED = "job.rejected"
JOB_QUEUED = "job.queued"
JOB_STARTED = "job.started"
JOB_SUCCEEDED = "job.succeeded"
JOB_FAILED = "job.failed"
JOB_CANCELLED = "job.cancelled"
JOB_APPROVAL_REQUIRED = "job.approval_required"  # the worker's re-check sent it back for approval
ARTIFACT_VIEWED = "artifact.viewed"
ARTIFACT_DOWNLOADED = "artifact.downloaded"
USER_LOGIN = "user.login"
USER_LOGOUT = "user.logout"
USER_LOGIN_FAILED = "user.login_failed"
ROLE_CHANGED = "role.changed"
APIKEY_CREATED = "apikey.created"
APIKEY_REVOKED = "apikey.revoked"
AUDIT_EXPORTED = "audit.exported"
AUDIT_VERIFIED = "audit.verified"
AUDIT_CHECKPOINT = "audit.checkpoint"

ACTIONS: tuple[str, ...] = (
    JOB_SUBMITTED, JOB_APPROVED, JOB_REJECTED, JOB_QUEUED, JOB_STARTED, JOB_SUCCEEDED, JOB_FAILED,
    JOB_CANCELLED, JOB_APPROVAL_REQUIRED, ARTIFACT_VIEWED, ARTIFACT_DOWNLOADED, USER_LOGIN, USER_LOGOUT, USER_LOGIN_FAILED,
    ROLE_CHANGED, APIKEY_CREATED, APIKEY_REVOKED, AUDIT_EXPORTED, AUDIT_VERIFIED, AUDIT_CHECKPOINT,
)
# --- account governance (issue 11): listed and described in
# editplatform/accounts/audit_events.py; move there with per-app registration.
ACCOUNT_ACTIONS: tuple[str, ...] = (
    "account.created", "account.changed", "account.deleted", "account.password_changed",
    "account.permissions_changed", "account.superuser_created", "account.recovery_opened",
    "account.recovery_confirmed", "account.recovery_completed", "account.enrolment_code_issued",
    "group.changed", "apikey.changed", "user.2fa_failed", "user.2fa_enrolled", "user.2fa_reset",
    "user.2fa_device_changed", "user.locked_out",
)
ACTIONS += ACCOUNT_ACTIONS
# --- end account governance
ACTION_SET = frozenset(ACTIONS)


def validate(action: str) -> str:
    if action not in ACTION_SET:
        raise ValueError(f"unknown audit action {action!r}; known: {', '.join(ACTIONS)}")
    return action
