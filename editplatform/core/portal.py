"""The portal's one way to show a :class:`~editplatform.core.errors.DomainError`.

On a form, the message goes to the blamed field when the form has it (else to the
form as a whole); without a form it becomes a page message. Either way the caller
answers with the error's HTTP status.
"""

from __future__ import annotations

from django.contrib import messages

from editplatform.core.errors import DomainError


def show_error(request, exc: DomainError, form=None) -> int:
    """Show ``exc`` to the person who made ``request``; returns its HTTP status."""
    if form is not None:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    else:
        messages.error(request, exc.message)
    return exc.status
