"""Sign-in events: `user.login` only once the second factor is proven, failures bounded.

- `user.login` is written when the session is fully signed in: at the password step
  for roles without 2FA, after the TOTP code (`two_factor` view) for the others.
- `user.login_failed` is written once per client address and window
  (`LOGIN_FAILURE_EVENT_WINDOW_SECONDS`); later failures in the window are counted in
  `SignInFailureWindow`, and the next window's event carries the previous count.
  Anonymous guessing therefore grows the permanent log by at most one event per
  address and window. `user.locked_out` is aggregated the same way.
- The names tried are kept (truncated); the subject is the address, not the name, so
  no user-supplied string becomes part of a URL path.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import IntegrityError, transaction
from django.db.models import F
from django.dispatch import receiver
from django.utils import timezone

from editplatform.accounts import audit_actions as actions
from editplatform.accounts import audit_events as events
from editplatform.accounts.models import SignInFailureWindow
from editplatform.accounts.two_factor import requires_two_factor
from editplatform.core.middleware import client_ip

_USERNAME_LIMIT = 150
_NAMES_KEPT = 5


def client(request) -> dict:
    if request is None:
        return {}
    meta = getattr(request, "META", {})
    return {"ip": client_ip(request), "user_agent": meta.get("HTTP_USER_AGENT", "")[:200]}


def _append(action: str, **kwargs) -> None:
    from audit.log import append_event

    append_event(action, **kwargs)


def record_login(request, user, *, second_factor: str | None) -> None:
    _append(
        actions.USER_LOGIN,
        actor=user,
        subject=f"user:{user.pk}",
        payload={**client(request), "second_factor": second_factor},
    )


@receiver(user_logged_in, dispatch_uid="accounts.user_logged_in")
def on_login(sender, request, user, **kwargs):
    if requires_two_factor(user) and not getattr(user, "is_verified", lambda: False)():
        return  # half signed in: the two_factor view writes user.login after the code
    record_login(request, user, second_factor=None)


@receiver(user_logged_out, dispatch_uid="accounts.user_logged_out")
def on_logout(sender, request, user, **kwargs):
    if user is None or not getattr(user, "is_authenticated", False):
        return
    _append(actions.USER_LOGOUT, actor=user, subject=f"user:{user.pk}", payload=client(request))


def _window_start(now: datetime) -> datetime:
    seconds = int(settings.LOGIN_FAILURE_EVENT_WINDOW_SECONDS)
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=timezone.get_current_timezone())


def count_failure(address: str, username: str, *, kind: str) -> tuple[SignInFailureWindow, bool]:
    """Count one failure; return the window row and whether it is the window's first."""
    start = _window_start(timezone.now())
    address = address[:64] or "unknown"
    with transaction.atomic():
        updated = SignInFailureWindow.objects.filter(
            address=address, window_start=start, kind=kind
        ).update(count=F("count") + 1)
        if not updated:
            try:
                with transaction.atomic():
                    row = SignInFailureWindow.objects.create(
                        address=address,
                        window_start=start,
                        kind=kind,
                        count=1,
                        usernames=[username],
                    )
                return row, True
            except IntegrityError:  # another process made the row first
                SignInFailureWindow.objects.filter(
                    address=address, window_start=start, kind=kind
                ).update(count=F("count") + 1)
        row = SignInFailureWindow.objects.select_for_update().get(
            address=address, window_start=start, kind=kind
        )
        if username not in row.usernames and len(row.usernames) < _NAMES_KEPT:
            row.usernames = [*row.usernames, username]
            row.save(update_fields=["usernames"])
    return row, False


def _previous(row: SignInFailureWindow) -> dict | None:
    before = (
        SignInFailureWindow.objects.filter(
            address=row.address, kind=row.kind, window_start__lt=row.window_start
        )
        .order_by("-window_start")
        .first()
    )
    if before is None:
        return None
    return {
        "window_start": before.window_start.isoformat(),
        "count": before.count,
        "usernames": before.usernames,
    }


def _window_payload(row: SignInFailureWindow) -> dict:
    seconds = int(settings.LOGIN_FAILURE_EVENT_WINDOW_SECONDS)
    return {
        "window_start": row.window_start.isoformat(),
        "window_end": (row.window_start + timedelta(seconds=seconds)).isoformat(),
        "previous_window": _previous(row),
    }


@receiver(user_login_failed, dispatch_uid="accounts.user_login_failed")
def on_login_failed(sender, credentials, request=None, **kwargs):
    # Django has already masked secrets in `credentials`; keep only the name tried.
    attempted = str(credentials.get("username") or credentials.get("email") or "")[:_USERNAME_LIMIT]
    info = client(request)
    row, first = count_failure(info.get("ip", ""), attempted, kind="login")
    if first:
        _append(
            actions.USER_LOGIN_FAILED,
            actor=None,
            actor_name="",
            subject=f"address:{row.address}",
            payload={"username": attempted, **info, "count_in_window": 1, **_window_payload(row)},
        )


@receiver(user_locked_out, dispatch_uid="accounts.user_locked_out")
def on_locked_out(sender, request, username, ip_address, **kwargs):
    attempted = str(username or "")[:_USERNAME_LIMIT]
    row, first = count_failure(
        ip_address or client(request).get("ip", ""), attempted, kind="lockout"
    )
    if first:
        _append(
            events.USER_LOCKED_OUT,
            actor=None,
            actor_name="",
            subject=f"address:{row.address}",
            payload={"username": attempted, **client(request), **_window_payload(row)},
        )
