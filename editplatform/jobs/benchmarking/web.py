"""Start the API under gunicorn for a benchmark and wait until it answers.

``bench_jobs`` and ``bench_submit`` both measure the real HTTP path: their own
gunicorn on a free loopback port, started through the command's own ``spawn`` (which
keeps the process to stop it and logs its output), then polled on ``/healthz`` until it
answers. One copy of that here, so both benchmarks start the server the same way.
"""

from __future__ import annotations

import socket
import sys
import time
import urllib.request
from collections.abc import Callable

from django.core.management.base import CommandError


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    """Return once ``url`` answers; CommandError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise CommandError(f"{url} did not answer in {timeout:.0f}s")


def start_gunicorn(spawn: Callable[[list[str]], object], workers: int, threads: int = 4) -> str:
    """Start ``editplatform.wsgi`` on 127.0.0.1 with ``spawn(cmd)``; its base URL once up."""
    port = free_port()
    spawn(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "editplatform.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ]
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz")
    return base
