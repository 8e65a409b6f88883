"""PostgreSQL and Redis that the soak can restart under load (faults), on loopback.

tests/services.py starts throwaway servers for a test session as context managers;
the soak needs to stop and start the *same* servers mid-run (same port, same data),
so these wrap the same helpers (binaries, runuser, port waits) in small objects.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.services import (
    ServiceError,
    _as_postgres,
    _pg_bin,
    _wait_port,
    create_database,
    free_port,
)


class Postgres:
    """A PostgreSQL server with a fixed port and data directory; `restart()` = fast shutdown +
    start."""

    def __init__(self, root: Path):
        self.bin = _pg_bin()
        # Its own folder (not under `root`): the postgres user must be able to reach it.
        self.root = Path(tempfile.mkdtemp(prefix="styleledger-soak-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        if _running_as_root():
            shutil.chown(self.root, "postgres", "postgres")
            self.root.chmod(0o700)
        init = subprocess.run(
            _as_postgres(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "styleledger",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--locale=C",
                ]
            ),
            capture_output=True,
            text=True,
        )
        if init.returncode != 0:
            raise ServiceError(f"initdb failed: {init.stderr[-2000:]}")
        # Durable commits (unlike the test session's server): a fast shutdown mid-run must
        # not lose a commit the platform already acknowledged and exported a checkpoint of.
        self.opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=on "
            "-c synchronous_commit=on -c max_connections=200"
        )
        self.start()
        self.url = create_database(f"postgres://styleledger@127.0.0.1:{self.port}/postgres", "soak")

    def _ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), *args]),
            capture_output=True,
            text=True,
        )

    def start(self) -> None:
        done = self._ctl(
            "-o", self.opts, "-l", str(self.root / "server.log"), "-w", "-t", "60", "start"
        )
        if done.returncode != 0:
            raise ServiceError(f"PostgreSQL did not start: {done.stderr}")
        _wait_port(self.port, 30, "PostgreSQL")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "-t", "60", "stop")

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class Redis:
    """redis-server on a fixed port and directory, with an append-only file (fsync always).

    `restart(persistent=True)`: a clean shutdown and start: the queue survives.
    `restart(persistent=False)`: SIGKILL and start with the data removed: every queued
    message is gone, as with a broker that runs without persistence.
    """

    def __init__(self, root: Path):
        self.exe = shutil.which("redis-server")
        if self.exe is None:
            raise ServiceError("redis-server not found: install the Debian package redis-server")
        self.dir = Path(tempfile.mkdtemp(prefix="redis-", dir=root))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.dir),
                "--protected-mode",
                "yes",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, 20, "redis-server", self.proc)

    def stop(self, persistent: bool = True) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM if persistent else signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None
        if not persistent:
            shutil.rmtree(self.dir)
            self.dir.mkdir()

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _running_as_root() -> bool:
    import os

    return os.geteuid() == 0
