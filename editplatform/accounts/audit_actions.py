"""The audit actions the accounts app writes (registered with the log's vocabulary on import)."""

from __future__ import annotations

from audit.actions import register

USER_LOGIN = register("user.login", "a person signed in")
USER_LOGOUT = register("user.logout", "a person signed out")
USER_LOGIN_FAILED = register("user.login_failed", "a sign-in failed")
ROLE_CHANGED = register("role.changed", "someone's roles changed")
APIKEY_CREATED = register("apikey.created", "an integration API key was created")
APIKEY_REVOKED = register("apikey.revoked", "an integration API key was revoked")
