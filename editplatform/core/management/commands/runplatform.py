"""`make run`: the whole platform on one machine — web server plus one real worker.

Steps: migrate, create demo accounts (passwords printed once), make sure a model
bundle exists (builds the seeded bootstrap bundle when no trained one is shipped),
start gunicorn on 127.0.0.1:8000 and one Celery worker process (with the embedded
beat scheduler for periodic sweeps), wait until /readyz answers, print the URL, then
forward Ctrl-C / SIGTERM to both children and wait for them to stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run the web server and one Celery worker on embedded defaults; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--no-worker", action="store_true", help="start the web server only")
        parser.add_argument("--ready-timeout", type=float, default=120.0)

    def handle(self, *args, **opts):
        var_dir = Path(settings.VAR_DIR)
        var_dir.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        self._ensure_bundle()
        # First start: the model registry registers and activates that bundle (recorded as
        # a model.bootstrapped event); later starts leave the registry's choice alone.
        call_command("models", "bootstrap", stdout=self.stdout)
        call_command("bootstrap_demo_accounts", stdout=self.stdout)

        env = os.environ.copy()
        env.setdefault("DJANGO_SETTINGS_MODULE", "editplatform.settings")
        children: list[tuple[str, subprocess.Popen]] = []
        web_cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "editplatform.wsgi:application",
            "--bind",
            f"{opts['host']}:{opts['port']}",
            "--workers",
            str(opts["web_workers"]),
            "--threads",
            "4",
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "10",
        ]
        children.append(("web", subprocess.Popen(web_cmd, env=env, start_new_session=True)))
        if not opts["no_worker"]:
            worker_cmd = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "editplatform",
                "worker",
                "-Q",
                "gpu,default",
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "--loglevel",
                "INFO",
                "--hostname",
                "worker1@%h",
                "--beat",
                "--schedule",
                str(var_dir / "celerybeat-schedule"),
            ]
            children.append(
                ("worker", subprocess.Popen(worker_cmd, env=env, start_new_session=True))
            )

        stopping = {"flag": False}

        def stop(signum, frame):
            stopping["flag"] = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        url = f"http://{opts['host']}:{opts['port']}/"
        try:
            ready = self._wait_ready(url + "readyz", opts["ready_timeout"], children, stopping)
            if ready is not None:
                self.stdout.write(
                    self.style.SUCCESS(f"StyleLedger is running at {url}  (Ctrl-C stops it)")
                )
                self.stdout.write(f"readiness: {json.dumps(ready)}")
            while not stopping["flag"]:
                for name, proc in children:
                    if proc.poll() is not None:
                        raise CommandError(f"{name} process exited with code {proc.returncode}")
                time.sleep(0.5)
        finally:
            self._stop(children)

    def _ensure_bundle(self) -> None:
        bundle = Path(settings.MODEL_BUNDLE)
        if (bundle / "manifest.json").exists():
            self.stdout.write(f"Model bundle: {bundle}")
            return
        if os.environ.get("MODEL_BUNDLE"):
            raise CommandError(f"MODEL_BUNDLE={bundle} has no manifest.json")
        from inversion.bundle import build_random_bundle

        self.stdout.write(
            f"No trained bundle shipped; building the seeded bootstrap bundle at {bundle} ..."
        )
        build_random_bundle(bundle, preset="tiny", seed=0)

    def _wait_ready(self, url, timeout, children, stopping):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline and not stopping["flag"]:
            for name, proc in children:
                if proc.poll() is not None:
                    raise CommandError(
                        f"{name} process exited with code {proc.returncode} during start-up"
                    )
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                last = exc.read().decode(errors="replace")
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.5)
        if not stopping["flag"]:
            self.stderr.write(f"not ready after {timeout:.0f}s: {last}")
        return None

    def _stop(self, children) -> None:
        for _name, proc in children:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 30
        for name, proc in children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in time; killing it")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.stdout.write("Stopped web server and worker.")
