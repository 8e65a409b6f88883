"""`make run`'s command on embedded defaults: serves /healthz and /readyz, stops on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT
from tests.services import free_port


@pytest.mark.embedded
@pytest.mark.slow
def test_runplatform_serves_health_and_stops_on_ctrl_c(tmp_path, model_bundle):
    port = free_port()
    env = os.environ.copy()
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    env.update(
        STYLELEDGER_VAR_DIR=str(tmp_path), MODEL_BUNDLE=str(model_bundle), PYTHONUNBUFFERED="1"
    )
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runplatform", "--port", str(port), "--web-workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        body = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/readyz", timeout=5
                ) as response:
                    body = json.loads(response.read())
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        output = (tmp_path / "run.log").read_text(errors="replace")
        assert body is not None, output[-4000:]
        assert body["checks"]["database"] == "ok" and body["checks"]["broker"] == "ok", body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert json.loads(response.read()) == {"status": "ok"}
        # The platform runs on the embedded defaults: SQLite and the filesystem broker under var/.
        assert (tmp_path / "db.sqlite3").exists() and (tmp_path / "broker" / "queue").is_dir()
        deadline = time.monotonic() + 60
        while "demo-reviewer" not in output and time.monotonic() < deadline:
            time.sleep(0.2)
            output = (tmp_path / "run.log").read_text(errors="replace")
        assert "demo-reviewer" in output and "passwords shown once" in output
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
        log.close()
    output = (tmp_path / "run.log").read_text(errors="replace")
    assert code == 0, output[-4000:]
    assert "Stopped web server and worker." in output
    leftovers = subprocess.run(
        ["pgrep", "-f", f"127.0.0.1:{port}"], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == [], leftovers
