"""Who is acting right now, for audit events raised from signals.

Signal handlers (role changes made in the admin, say) cannot see the request. This
middleware keeps the signed-in user in a context variable for the request's duration;
management commands set it explicitly with `acting_as`.
"""

from __future__ import annotations

import contextlib
import contextvars

_actor: contextvars.ContextVar = contextvars.ContextVar("styleledger_actor", default=None)


def current_actor():
    return _actor.get()


@contextlib.contextmanager
def acting_as(user):
    token = _actor.set(user)
    try:
        yield
    finally:
        _actor.reset(token)


class CurrentActorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        token = _actor.set(user if getattr(user, "is_authenticated", False) else None)
        try:
            return self.get_response(request)
        finally:
            _actor.reset(token)
