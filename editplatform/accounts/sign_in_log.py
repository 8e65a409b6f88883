"""Sign-in, sign-out and failed sign-in as audit events (Django's auth signals)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit.log import append_event
from editplatform.accounts import audit_actions as actions

_USERNAME_LIMIT = 150


def _client(request) -> dict:
    if request is None:
        return {}
    meta = getattr(request, "META", {})
    return {"ip": meta.get("REMOTE_ADDR", ""), "user_agent": meta.get("HTTP_USER_AGENT", "")[:200]}


@receiver(user_logged_in, dispatch_uid="accounts.user_logged_in")
def on_login(sender, request, user, **kwargs):
    append_event(actions.USER_LOGIN, actor=user, subject=f"user:{user.pk}", payload=_client(request))


@receiver(user_logged_out, dispatch_uid="accounts.user_logged_out")
def on_logout(sender, request, user, **kwargs):
    if user is None or not getattr(user, "is_authenticated", False):
        return
    append_event(actions.USER_LOGOUT, actor=user, subject=f"user:{user.pk}", payload=_client(request))


@receiver(user_login_failed, dispatch_uid="accounts.user_login_failed")
def on_login_failed(sender, credentials, request=None, **kwargs):
    # Django has already masked secrets in `credentials`; keep only the name tried.
    attempted = str(credentials.get("username") or credentials.get("email") or "")[:_USERNAME_LIMIT]
    append_event(actions.USER_LOGIN_FAILED, actor=None, actor_name="", subject=f"login:{attempted}"[:200],
                 payload={"username": attempted, **_client(request)})
