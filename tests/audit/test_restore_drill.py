"""The backup and restore drill of docs/operations-restore.md, on PostgreSQL, step by step.

Every step is the runbook's own command (`pg_dump`, `pg_restore`, `manage.py ...`) run
as a subprocess against a database of its own on the session's PostgreSQL server: the
platform works, is backed up, keeps working, is restored. Then the verifier given the
witnessed checkpoints names the lost index range, every append is refused until an
operator acknowledges the rollback, the acknowledgement is a signed fork checkpoint,
and jobs whose bytes the storage backup lacks are marked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_env
from tests.services import _pg_bin, create_database

MAKE_CLIENT = """
from django.contrib.auth import get_user_model
from editplatform.accounts.roles import INTEGRATION, ensure_groups
from editplatform.accounts.services import create_api_key
user = get_user_model().objects.create_user(username="drill")
user.groups.add(ensure_groups()[INTEGRATION.name])
print(create_api_key(user, name="drill", scopes=["jobs:read", "jobs:write"])[1])
"""

DOWNLOAD = """
from rest_framework.test import APIClient
client = APIClient()
client.credentials(HTTP_AUTHORIZATION="Api-Key %(key)s")
response = client.get("/api/v1/jobs/%(job)s/artifacts/edited")
print("HTTP", response.status_code, response.get("Content-Type"))
print(response.content.decode(errors="replace")[:400] if response.status_code != 200 else "")
"""

MAKE_JOB = """
from django.contrib.auth import get_user_model
from editplatform.jobs import artifacts
from editplatform.jobs.models import EditJob
user = get_user_model().objects.get(username="drill")
original = artifacts.store(b"original photo bytes %(tag)s", "image/jpeg")
edited = artifacts.store(b"edited output bytes %(tag)s", "image/png")
job = EditJob.objects.create(
    requester=user, source="api", original=original, upload_sha256=original.sha256,
    upload_format="jpeg", edits={}, purpose="restore drill", params_sha256="0" * 64,
    state="succeeded", edited=edited,
)
print(job.pk, original.sha256, edited.sha256)
"""


class Drill:
    def __init__(self, root: Path, database_url: str):
        self.root = root
        self.database_url = database_url
        self.storage = root / "storage"
        self.checkpoints = root / "checkpoints"
        self.env = dict(
            os.environ,
            DATABASE_URL=database_url,
            STYLELEDGER_VAR_DIR=str(root / "var"),
            STORAGE_ROOT=str(self.storage),
            AUDIT_CHECKPOINT_DIR=str(self.checkpoints),
            AUDIT_CHECKPOINT_EVERY="1",
            ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
        )

    def manage(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if ok and done.returncode != 0:
            pytest.fail(
                f"manage.py {' '.join(args)} failed "
                f"({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done

    def work(self, n: int = 1) -> None:
        for _ in range(n):
            self.manage("audit", "checkpoint")

    def make_job(self, tag: str) -> tuple[str, dict[str, str]]:
        out = self.manage("shell", "-c", MAKE_JOB % {"tag": tag}).stdout.split()
        return out[-3], {"original": out[-2], "edited": out[-1]}

    def download(self, key: str, job: str) -> str:
        return self.manage("shell", "-c", DOWNLOAD % {"key": key, "job": job}).stdout

    def head_size(self) -> int:
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            return conn.execute("SELECT size FROM audit_loghead").fetchone()[0]


def _pg(tool: str, *args: str) -> None:
    done = subprocess.run(
        [str(_pg_bin() / tool), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{tool} failed: {done.stderr}"


def test_restore_drill(tmp_path, test_pass):
    if test_pass != "postgres":
        pytest.fail("the restore drill runs on PostgreSQL (python -m tests.launch)")
    server = require_env("DATABASE_URL").rsplit("/", 1)[0]
    name = f"drill_{uuid.uuid4().hex[:8]}"
    drill = Drill(tmp_path, create_database(f"{server}/postgres", name))
    drill.manage("migrate", "--no-input")

    # 1. The platform works: events, checkpoints exported, one job with stored outputs.
    key = drill.manage("shell", "-c", MAKE_CLIENT).stdout.split()[-1]
    drill.work(3)
    storage_backup = tmp_path / "backup-storage"
    early_job, _ = drill.make_job("early")
    # The storage backup is taken *before* the next job's outputs exist (the runbook
    # says: database first; this drill does it the wrong way round on purpose).
    shutil.copytree(drill.storage, storage_backup)
    late_job, late_artifacts = drill.make_job("late")

    # 2. Back up the database.
    dump = tmp_path / "backup.dump"
    _pg("pg_dump", "-Fc", "-f", str(dump), drill.database_url)
    backup_size = drill.head_size()

    # 3. Keep working after the backup: these events will be lost.
    drill.work(4)
    witnessed_size = drill.head_size()
    assert witnessed_size > backup_size
    witnessed = tmp_path / "witnessed-checkpoints.jsonl"  # the copy kept off the machine
    shutil.copy(drill.checkpoints / "checkpoints.jsonl", witnessed)

    # 4. Restore the database and the storage from their backups.
    _pg("pg_restore", "--clean", "--if-exists", "--no-owner", "-d", drill.database_url, str(dump))
    shutil.rmtree(drill.storage)
    shutil.copytree(storage_backup, drill.storage)
    assert drill.head_size() == backup_size

    # 5. The verifier given the witnessed checkpoints reports the rollback by index range.
    verify = drill.manage("audit", "verify", "--trusted-checkpoint", str(witnessed), ok=False)
    assert verify.returncode != 0
    assert f"events {backup_size}..{witnessed_size - 1}" in verify.stdout + verify.stderr

    # 6. Nothing is appended on the rolled-back log, whatever asks.
    refused = drill.manage("audit", "checkpoint", ok=False)
    assert refused.returncode != 0
    assert (
        "rolled back" in refused.stderr
        and f"events {backup_size}..{witnessed_size - 1}" in refused.stderr
    )
    assert drill.head_size() == backup_size
    in_app = drill.manage(
        "shell",
        "-c",
        (
            "from django.db import transaction\n"
            "from audit import actions, log\n"
            "from audit.rollback import LogRolledBack\n"
            "try:\n"
            "    with transaction.atomic():\n"
            "        log.append_event(actions.AUDIT_VERIFIED, actor_name='web')\n"
            "except LogRolledBack as exc:\n"
            "    print('REFUSED', exc.status, exc.code)\n"
        ),
    )
    assert "REFUSED 503 audit_log_rolled_back" in in_app.stdout
    refused_download = drill.download(key, early_job)  # a download is an audited action
    assert "HTTP 503" in refused_download and "audit_log_rolled_back" in refused_download, (
        refused_download
    )
    assert f"events {backup_size}..{witnessed_size - 1}" in refused_download
    without_reason = drill.manage("audit", "acknowledge-rollback", "--reason", "oops", ok=False)
    assert without_reason.returncode != 0 and drill.head_size() == backup_size

    # 7. The operator acknowledges with a recorded reason: a signed fork checkpoint.
    ack = drill.manage(
        "audit",
        "acknowledge-rollback",
        "--operator",
        "ops-alice",
        "--json",
        "--reason",
        "restored last night's backup after disk failure (INC-42)",
    )
    facts = json.loads(ack.stdout)
    assert facts["lost_events"] == [backup_size, witnessed_size - 1]
    assert facts["event_seq"] == backup_size
    assert f"fork-from {witnessed_size} " in facts["note"]
    exported = [
        json.loads(line)
        for line in (drill.checkpoints / "checkpoints.jsonl").read_text().splitlines()
    ]
    assert exported[-1]["fork"]["lost_events"] == [backup_size, witnessed_size - 1]
    again = drill.manage(
        "audit", "acknowledge-rollback", "--reason", "acknowledge the same rollback twice", ok=False
    )
    assert "no rollback to acknowledge" in again.stderr

    assert "HTTP 200" in drill.download(key, early_job)

    # 8. Appends resume; verification with the witnessed copy names the acknowledged fork.
    drill.work(1)
    verified = drill.manage("audit", "verify", "--trusted-checkpoint", str(witnessed), "--json")
    result = json.loads(verified.stdout)
    assert result["ok"], result
    assert any(
        f"events {backup_size}..{witnessed_size - 1}" in fork
        for fork in result["acknowledged_forks"]
    )
    event = drill.manage(
        "shell",
        "-c",
        (
            "from audit.models import AuditEvent\n"
            "import json\n"
            "e = AuditEvent.objects.get(action='audit.rollback_acknowledged')\n"
            "print(json.dumps([e.actor_name, json.loads(e.entry)['payload']['reason']]))\n"
        ),
    )
    assert json.loads(event.stdout.strip().splitlines()[-1]) == [
        "ops-alice",
        "restored last night's backup after disk failure (INC-42)",
    ]

    # 9. Jobs whose bytes the storage backup lacks are found and marked (once).
    check = drill.manage("check_artifacts", "--mark", "--json", ok=False)
    assert check.returncode != 0
    report = json.loads(check.stdout)
    assert report["jobs_missing_artifacts"] == {late_job: late_artifacts}
    assert early_job not in report["jobs_missing_artifacts"] and report["marked"] == 1
    report = json.loads(drill.manage("check_artifacts", "--mark", "--json", ok=False).stdout)
    assert report["marked"] == 0
    final = json.loads(
        drill.manage("audit", "verify", "--trusted-checkpoint", str(witnessed), "--json").stdout
    )
    assert final["ok"], final
