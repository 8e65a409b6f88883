"""The one domain error: a request the platform's rules refuse.

Services raise :class:`DomainError` with a human message (naming the problem), a
machine-readable ``code``, the HTTP ``status`` to answer with and, when one input is
to blame, its ``field``. Entry points never translate it by hand: the DRF exception
handler (:mod:`editplatform.core.api`) renders it as the API's ``{detail, code,
field}`` body, and :func:`editplatform.core.portal.show_error` as a form or page
message.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refused request; ``status`` is the HTTP status it answers with."""

    def __init__(self, message: str, code: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.field = field

    def as_dict(self) -> dict:
        data = {"detail": self.message, "code": self.code}
        if self.field:
            data["field"] = self.field
        return data
