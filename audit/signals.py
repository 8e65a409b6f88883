"""Signals the log sends, so apps above it can react to events without the log knowing them.

``event_appended`` is sent once the transaction that appended an event has committed
(never for an event that was rolled back), with ``event=`` the :class:`AuditEvent`.
"""

from django.dispatch import Signal

event_appended = Signal()
