"""The audit actions that account governance records (issue 11, items 1-3).

One list, name -> what the event means, registered with the log's vocabulary on import
(beside the older account actions in `audit_actions`), so reviewers' filters and the
docs show them.
"""

from __future__ import annotations

from audit.actions import register

ACCOUNT_CREATED = "account.created"
ACCOUNT_CHANGED = "account.changed"
ACCOUNT_DELETED = "account.deleted"
ACCOUNT_PASSWORD_CHANGED = "account.password_changed"
ACCOUNT_PERMISSIONS_CHANGED = "account.permissions_changed"
ACCOUNT_SUPERUSER_CREATED = "account.superuser_created"
ACCOUNT_RECOVERY_OPENED = "account.recovery_opened"
ACCOUNT_RECOVERY_CONFIRMED = "account.recovery_confirmed"
ACCOUNT_RECOVERY_COMPLETED = "account.recovery_completed"
ACCOUNT_ENROLMENT_CODE_ISSUED = "account.enrolment_code_issued"
GROUP_CHANGED = "group.changed"
APIKEY_CHANGED = "apikey.changed"
USER_2FA_FAILED = "user.2fa_failed"
USER_2FA_ENROLLED = "user.2fa_enrolled"
USER_2FA_RESET = "user.2fa_reset"
USER_2FA_DEVICE_CHANGED = "user.2fa_device_changed"
USER_LOCKED_OUT = "user.locked_out"

EVENTS: dict[str, str] = {
    ACCOUNT_CREATED: "an account was created (admin, command or shell)",
    ACCOUNT_CHANGED: "an account's fields changed (names of the fields, old and new flags)",
    ACCOUNT_DELETED: "an account was deleted",
    ACCOUNT_PASSWORD_CHANGED: "an account's password was set or changed (never the password)",
    ACCOUNT_PERMISSIONS_CHANGED: "per-user permissions were added or removed",
    ACCOUNT_SUPERUSER_CREATED: (
        "an operator made a superuser with create_operator_superuser --reason"
    ),
    ACCOUNT_RECOVERY_OPENED: "another person reset a privileged account's password or 2FA; "
    "its privileged roles are suspended",
    ACCOUNT_RECOVERY_CONFIRMED: "a second administrator confirmed an account recovery",
    ACCOUNT_RECOVERY_COMPLETED: "recovery confirmed and (for 2FA) re-enrolled: the roles are back",
    ACCOUNT_ENROLMENT_CODE_ISSUED: "an administrator issued a one-time 2FA enrolment code",
    GROUP_CHANGED: "a group was created, renamed, deleted or its permissions changed",
    APIKEY_CHANGED: "an API key row changed outside the create/revoke services",
    USER_2FA_FAILED: "a wrong second-factor code (or enrolment code) was entered",
    USER_2FA_ENROLLED: "a user confirmed a new TOTP device",
    USER_2FA_RESET: "an administrator removed a user's TOTP devices",
    USER_2FA_DEVICE_CHANGED: "a TOTP device row was changed or deleted outside the reset service",
    USER_LOCKED_OUT: "django-axes locked an account or address after repeated failures",
}
NAMES: tuple[str, ...] = tuple(register(name, description) for name, description in EVENTS.items())
