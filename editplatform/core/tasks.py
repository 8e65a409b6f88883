"""Tasks that prove the queueing path works end to end."""

from __future__ import annotations

import os
import socket

from celery import shared_task


@shared_task(name="core.ping", acks_late=True)
def ping(payload: str = "ping") -> dict:
    """Round-trip probe: returns what it got plus who ran it."""
    return {"payload": payload, "hostname": socket.gethostname(), "pid": os.getpid()}
