"""Test harness: real services only.

- PostgreSQL / SQLite: pytest-django's test database on whatever DATABASE_URL the
  launcher (`python -m tests.launch`) exported.
- Redis: pytest-redis's `redis_noproc` on the launcher's throwaway server.
- Celery: `celery_worker` starts a real worker *process* bound to the test database
  and the configured broker, and stops it after the session.
- Chromium: `browser` launches Debian's /usr/bin/chromium through Playwright.

A service the suite needs but cannot reach is an error, never a skip.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pytest_redis import factories

ROOT = Path(__file__).resolve().parent.parent


def manage_check(*, timeout: float = 120, **overrides: str) -> subprocess.CompletedProcess:
    """``manage.py check`` in a fresh process with ``overrides`` on this environment: how a
    test sees what start-up refuses (settings are read once per process)."""
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, **overrides},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


OUTPUT = ROOT / "test-output"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls
# made by test code in that thread are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

_redis = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"))
redis_noproc = factories.redis_noproc(host=_redis.hostname, port=_redis.port, startup_timeout=5)
redisdb = factories.redisdb("redis_noproc")


def require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: run the suite through `make test` (python -m tests.launch)",
            pytrace=False,
        )
    return value


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_env("REDIS_URL")


@pytest.fixture(scope="session")
def test_pass() -> str:
    return os.environ.get("STYLELEDGER_TEST_PASS", "postgres")


# --- Celery worker process -------------------------------------------------------


class WorkerProcess:
    """A real `celery worker` subprocess bound to the test database and broker."""

    def __init__(
        self,
        env: dict[str, str],
        name: str,
        queues: str = "gpu,default",
        log_path: Path | None = None,
        app: str = "editplatform",
    ):
        self.name = name
        self.log_path = log_path or OUTPUT / f"worker-{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "-Q",
            queues,
            "--concurrency",
            "1",
            "--pool",
            "prefork",
            "--hostname",
            f"{name}@%h",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"worker {self.name} exited ({self.proc.returncode}); log:\n"
                    f"{self.log()[-3000:]}"
                )
            if "ready." in self.log():
                return
            time.sleep(0.2)
        raise RuntimeError(
            f"worker {self.name} not ready in {timeout}s; log:\n{self.log()[-3000:]}"
        )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def child_pids(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in out.split()]

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the whole worker (parent and pool children) at once."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._log.close()


def worker_env() -> dict[str, str]:
    """The environment for a worker that shares this test session's database."""
    from django.db import connection

    env = os.environ.copy()
    settings_dict = connection.settings_dict
    if settings_dict["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{settings_dict['NAME']}"
    else:
        user = settings_dict.get("USER") or ""
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        env["DATABASE_URL"] = f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="session")
def start_worker(django_db_setup, django_db_blocker):
    """Factory: start a worker process on the test database; all are stopped at the end."""
    started: list[WorkerProcess] = []

    def _start(
        name: str | None = None,
        queues: str = "gpu,default",
        env: dict[str, str] | None = None,
        app: str = "editplatform",
    ) -> WorkerProcess:
        """`app` is the Celery app module (tests.jobs.slow_worker for deliberately slow jobs)."""
        with django_db_blocker.unblock():
            worker = WorkerProcess(
                env or worker_env(), name or f"w{uuid.uuid4().hex[:6]}", queues, app=app
            )
        started.append(worker)
        worker.wait_ready()
        return worker

    yield _start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def celery_worker(start_worker):
    """One shared worker process for the session."""
    return start_worker("session")


# --- Chromium ------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (make test does)", pytrace=False
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    OUTPUT.mkdir(exist_ok=True)
    safe = request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    try:
        page.screenshot(path=str(OUTPUT / f"{safe}.png"), full_page=True)
    finally:
        context.close()


def login(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


# --- model bundle ----------------------------------------------------------------


@pytest.fixture(scope="session")
def model_bundle() -> Path:
    """The bundle the platform loads (settings.MODEL_BUNDLE).

    When no trained demo bundle is shipped, it is the seeded-random bootstrap bundle,
    built once here with the project's own builder (a real model, untrained).
    """
    from django.conf import settings

    path = Path(settings.MODEL_BUNDLE)
    if not (path / "manifest.json").exists():
        from inversion.bundle import build_random_bundle

        build_random_bundle(path, preset="tiny", seed=0)
    return path


# --- authenticated clients ------------------------------------------------------------


def mark_two_factor_verified(client, user) -> None:
    """Give a signed-in test client a verified second factor (a confirmed TOTP device).

    The same state django_otp.login() leaves in a real session; used for people whose
    role requires 2FA, so tests exercise the middleware rather than switching it off.
    """
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="test authenticator", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def api_client_for(user=None, *, scopes=("jobs:read", "jobs:write", "audit:read")):
    """A DRF test client that authenticates the way production does.

    People sign in with a session (and a verified second factor where their role needs
    one); integration service accounts use a freshly created, scoped API key.
    """
    from rest_framework.test import APIClient

    from editplatform.accounts.roles import INTEGRATION, has_role
    from editplatform.accounts.two_factor import requires_two_factor

    client = APIClient()
    if user is None:
        return client
    if has_role(user, INTEGRATION):
        from editplatform.accounts.services import create_api_key

        _key, raw = create_api_key(user, name="test key", scopes=list(scopes))
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
        return client
    client.force_login(user)
    if requires_two_factor(user):
        mark_two_factor_verified(client, user)
    return client
