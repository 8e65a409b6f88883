"""docker/compose.yml brought up service by service with its real commands.

Every service runs the command, environment and volumes the compose file gives it
(tests/deploy/stack.py), in production mode, against real PostgreSQL, Redis, a
SeaweedFS S3 server and nginx. The negative cases mutate a copy of the compose
config and show that the same check then fails.
"""

from __future__ import annotations

import copy
import re
import subprocess
import time

import psycopg
import pytest
import requests

from tests.conftest import ROOT
from tests.deploy.stack import check_every_queue_consumed, check_single_beat, without
from tests.jobs import images

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker, pytest.mark.slow]

HOST = "edit.example.org"
QUEUES = ["gpu", "default"]

MAKE_KEY = """
from django.contrib.auth import get_user_model
from editplatform.accounts.roles import INTEGRATION
from editplatform.accounts.services import create_api_key, grant_role
user, _ = get_user_model().objects.get_or_create(username="compose-integration")
grant_role(user, INTEGRATION.name)
key, raw = create_api_key(user, name="compose test", scopes=["jobs:read", "jobs:write"])
print("KEY", raw)
"""

# The web process loses the publish: its broker is unreachable when the job commits.
SUBMIT_WITH_BROKER_DOWN = """
import sys
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from tests.jobs import images
from tests import catalog
data = {
    "image": SimpleUploadedFile("p.jpg", images.jpeg((96, 72), seed=3)),
    "edits": catalog.request_json(),
    "purpose": "compose sweeper test",
    "consent": "true",
}
response = Client().post("/api/v1/jobs", data, secure=True, HTTP_HOST="edit.example.org",
                         HTTP_AUTHORIZATION="Api-Key " + sys.argv[1])
print("STATUS", response.status_code)
job_id = response.json().get("id")
print("JOB", job_id)
from editplatform.jobs.models import EditJob
print("ENQUEUE_ERROR", bool(EditJob.objects.get(pk=job_id).enqueue_error))
"""


def manage(stack, service: str, *args: str, env: dict | None = None, timeout: float = 180):
    full_env = stack.env(service) | (env or {})
    return subprocess.run(
        [str(stack.bin / "python"), "manage.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_until(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def proxy_url(stack, path: str) -> str:
    return f"https://127.0.0.1:{stack.port('proxy', 443)}{path}"


def tls_cert(stack) -> str:
    return str(stack.root / "volumes" / "tls" / "tls.crt")


def app_db(stack):
    return psycopg.connect(
        host=stack.postgres[0],
        port=stack.postgres[1],
        dbname=stack.database,
        user="styleledger_app",
        password="app-pw",
        autocommit=True,
    )


def owner_db(stack):
    return psycopg.connect(
        host=stack.postgres[0],
        port=stack.postgres[1],
        dbname=stack.database,
        user="styleledger",
        autocommit=True,
    )


@pytest.fixture(scope="module")
def api_key(deployment):
    result = manage(deployment, "web", "shell", "-c", MAKE_KEY)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("KEY ", 1)[1].split()[0]


def scrape(stack, token: str | None = "scrape-token") -> requests.Response:
    headers = {"Host": "web:8000"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(
        f"http://127.0.0.1:{stack.port('web', 8000)}/metrics", headers=headers, timeout=30
    )


# --- the file itself ------------------------------------------------------------------


def test_every_queue_has_a_consumer_and_beat_runs_once(deployment):
    check_every_queue_consumed(deployment.config, QUEUES)
    check_single_beat(deployment.config)
    with pytest.raises(AssertionError, match="default"):
        check_every_queue_consumed(without(deployment.config, "worker-cpu"), QUEUES)
    with pytest.raises(AssertionError, match="gpu"):
        check_every_queue_consumed(without(deployment.config, "worker"), QUEUES)


def test_init_made_the_key_the_certificate_and_the_app_role(deployment):
    key = deployment.root / "volumes" / "keys" / "audit_signing_key.pem"
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600
    assert (deployment.root / "volumes" / "tls" / "tls.crt").exists()
    assert "verifier key edit.example.org/audit+" in deployment.init_output
    assert "database role styleledger_app: created" in deployment.init_output
    # Idempotent: a second `up` keeps the key (a new one would orphan the checkpoints).
    before = key.read_bytes()
    again = deployment.run_once("init", timeout=240)
    assert again.returncode == 0, again.stderr
    assert key.read_bytes() == before and "exists" in again.stdout


def test_migrate_without_the_signing_key_fails(deployment):
    broken = copy.deepcopy(deployment.config)
    broken["services"]["migrate"]["volumes"] = [
        v for v in broken["services"]["migrate"]["volumes"] if not v.startswith("keys:")
    ]
    original = deployment.config
    deployment.config = broken
    try:
        result = deployment.run_once("migrate", timeout=240)
    finally:
        deployment.config = original
    assert result.returncode != 0
    assert "audit.E002" in result.stderr or "audit.E001" in result.stderr, result.stderr[-2000:]


# --- running services -----------------------------------------------------------------


def test_healthchecks_pass(deployment):
    for name in ("s3", "web", "proxy", "worker", "worker-cpu"):
        ok, output = deployment.healthcheck(name)
        assert ok, f"{name} healthcheck failed: {output}\n{deployment.running[name].log()[-3000:]}"


def test_a_broken_healthcheck_fails(deployment):
    spec = copy.deepcopy(deployment.config["services"]["web"]["healthcheck"])
    spec["retries"] = 1
    wrong_path = copy.deepcopy(spec)
    wrong_path["test"] = [arg.replace("/healthz", "/healthz-missing") for arg in spec["test"]]
    assert not deployment.healthcheck("web", wrong_path)[0]
    # The old check (no Host header) is refused by ALLOWED_HOSTS in production.
    old = dict(
        spec,
        test=[
            "CMD",
            "python",
            "-c",
            "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')",
        ],
    )
    assert not deployment.healthcheck("web", old)[0]
    # So is a worker check that pings a worker name nobody has.
    worker = copy.deepcopy(deployment.config["services"]["worker-cpu"]["healthcheck"])
    worker["retries"] = 1
    worker["test"] = [worker["test"][0], worker["test"][1].replace("cpu@", "nobody@")]
    assert not deployment.healthcheck("worker-cpu", worker)[0]


def test_http_redirects_to_https_and_https_serves_the_app(deployment):
    plain = requests.get(
        f"http://127.0.0.1:{deployment.port('proxy', 80)}/jobs/",
        headers={"Host": HOST},
        allow_redirects=False,
        timeout=30,
    )
    assert plain.status_code == 301 and plain.headers["Location"].startswith(f"https://{HOST}/")
    login = requests.get(
        proxy_url(deployment, "/login/"),
        headers={"Host": HOST},
        verify=tls_cert(deployment),
        allow_redirects=False,
        timeout=30,
    )
    assert login.status_code == 200, login.text[:500]
    assert "Strict-Transport-Security" in login.headers  # Django saw HTTPS through the proxy
    assert (
        requests.get(
            proxy_url(deployment, "/metrics"),
            headers={"Host": HOST},
            verify=tls_cert(deployment),
            timeout=30,
        ).status_code
        == 404
    )


def test_a_job_submitted_through_the_https_proxy_completes_on_s3(deployment, api_key):
    from tests import catalog

    response = requests.post(
        proxy_url(deployment, "/api/v1/jobs"),
        headers={"Host": HOST, "Authorization": f"Api-Key {api_key}"},
        files={"image": ("p.jpg", images.jpeg((96, 72)), "application/octet-stream")},
        data={
            "edits": catalog.request_json(),
            "purpose": "compose deployment test",
            "consent": "true",
        },
        verify=tls_cert(deployment),
        timeout=60,
    )
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]

    def finished():
        body = requests.get(
            proxy_url(deployment, f"/api/v1/jobs/{job_id}"),
            headers={"Host": HOST, "Authorization": f"Api-Key {api_key}"},
            verify=tls_cert(deployment),
            timeout=30,
        ).json()
        return body if body["state"] in {"succeeded", "failed"} else None

    body = wait_until(finished, 300, "the job to finish", interval=2)
    assert body["state"] == "succeeded", body
    # The artifacts are in the S3 bucket, not on a local disk.
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{deployment.port('s3', 8333)}",
        aws_access_key_id="styleledger",
        aws_secret_access_key="s3-secret-for-tests",
        region_name="us-east-1",
    )
    listed = s3.list_objects_v2(Bucket="styleledger-artifacts")
    assert listed.get("KeyCount", 0) >= 3, listed
    assert "gpu@" in deployment_job_worker(deployment, job_id)


def deployment_job_worker(stack, job_id: str) -> str:
    with owner_db(stack) as conn:
        return conn.execute("SELECT worker FROM jobs_editjob WHERE id = %s", [job_id]).fetchone()[0]


def submit_losing_the_publish(stack, api_key: str) -> str:
    dead = f"redis://127.0.0.1:{stack.port('nothing', 1)}/0"
    result = manage(
        stack,
        "web",
        "shell",
        "-c",
        SUBMIT_WITH_BROKER_DOWN.replace("sys.argv[1]", repr(api_key)),
        env={"CELERY_BROKER_URL": dead},
        timeout=240,
    )
    assert "STATUS 201" in result.stdout, result.stdout + result.stderr
    assert "ENQUEUE_ERROR True" in result.stdout, result.stdout  # the publish was lost
    return result.stdout.split("JOB ", 1)[1].split()[0]


def job_state(stack, job_id: str) -> str:
    with owner_db(stack) as conn:
        return conn.execute("SELECT state FROM jobs_editjob WHERE id = %s", [job_id]).fetchone()[0]


def test_the_sweeper_on_the_default_worker_sends_a_job_whose_publish_was_lost(deployment, api_key):
    job_id = submit_losing_the_publish(deployment, api_key)

    def done():
        with owner_db(deployment) as conn:
            row = conn.execute("SELECT state FROM jobs_editjob WHERE id = %s", [job_id]).fetchone()
        return row[0] in {"succeeded", "failed"} and row[0]

    assert wait_until(done, 300, "the swept job to finish", interval=2) == "succeeded"
    cpu_log = deployment.running["worker-cpu"].log()
    assert "Task jobs.sweep[" in cpu_log and "re-published" in cpu_log, cpu_log[-3000:]
    assert "Task jobs.sweep[" not in deployment.running["worker"].log()


def test_checkpoints_are_signed_and_the_log_verifies(deployment):
    def signed():
        with owner_db(deployment) as conn:
            return conn.execute("SELECT count(*) FROM audit_checkpoint").fetchone()[0]

    wait_until(signed, 90, "a signed checkpoint")
    exported = deployment.root / "volumes" / "storage" / "checkpoints" / "checkpoints.jsonl"
    wait_until(exported.exists, 30, "the exported checkpoint file")
    assert "Task audit.checkpoint[" in deployment.running["worker-cpu"].log()
    verify = manage(deployment, "web", "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_the_app_role_cannot_rewrite_the_audit_log(deployment):
    with app_db(deployment) as conn:
        assert conn.execute("SELECT count(*) FROM audit_event").fetchone()[0] > 0
        for statement in (
            "UPDATE audit_event SET action = 'forged'",
            "TRUNCATE audit_event",
            "UPDATE audit_checkpoint SET note = ''",
            "INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now())",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        # DELETE is granted only so the guard can quarantine rows planted beyond the head;
        # on rows of the log the guard refuses it.
        for statement in ("DELETE FROM audit_event", "DELETE FROM audit_treenode"):
            with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
                conn.execute(statement)
    with owner_db(deployment) as conn:
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_event'"
        ).fetchone()[0]
        users = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database()"
            )
        }
    assert owner == "styleledger" and "styleledger_app" in users


def test_metrics_show_the_deployment(deployment):
    assert scrape(deployment, token=None).status_code == 401
    assert scrape(deployment, token="wrong").status_code == 401
    response = scrape(deployment)
    assert response.status_code == 200, response.text[:500]
    from editplatform.monitoring.metrics import parse

    # One failure with a known code: a copy of a finished job, recorded as failed.
    with owner_db(deployment) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = "
                "'jobs_editjob'"
            )
        ]
        forced = {
            "id": "gen_random_uuid()",
            "state": "'failed'",
            "error_code": "'compose_test'",
            "idempotency_key": "NULL",
        }
        conn.execute(
            f"INSERT INTO jobs_editjob ({', '.join(columns)}) "
            f"SELECT {', '.join(forced.get(c, c) for c in columns)} FROM jobs_editjob "
            "WHERE state = 'succeeded' LIMIT 1"
        )
    response = scrape(deployment)
    values = parse(response.text)
    with owner_db(deployment) as conn:
        succeeded = conn.execute(
            "SELECT count(*) FROM jobs_editjob WHERE state = 'succeeded'"
        ).fetchone()[0]
        size = conn.execute("SELECT size FROM audit_loghead").fetchone()[0]
    assert succeeded >= 2
    assert values[("styleledger_jobs", (("state", "succeeded"),))] == succeeded
    assert values[("styleledger_jobs", (("state", "failed"),))] == 1
    assert values[("styleledger_job_failures_total", (("error_code", "compose_test"),))] == 1
    assert values[("styleledger_job_stage_seconds_count", (("stage", "total"),))] == succeeded
    assert values[("styleledger_queue_consumers", (("queue", "gpu"),))] == 1
    assert values[("styleledger_queue_consumers", (("queue", "default"),))] == 1
    assert values[("styleledger_queue_depth", (("queue", "gpu"),))] == 0
    assert abs(values[("styleledger_audit_log_size", ())] - size) <= 5
    assert values[("styleledger_audit_checkpoint_age_seconds", ())] < 60
    assert values[("styleledger_audit_unsigned_events", ())] >= 0
    # Every metric the example alerts and dashboard use is one the endpoint exposes.
    exposed = exposed_names(response.text)
    for path in (
        ROOT / "docker" / "prometheus" / "styleledger-alerts.yml",
        ROOT / "docker" / "grafana" / "styleledger-dashboard.json",
    ):
        used = set(re.findall(r"styleledger_[a-z_]+", path.read_text()))
        assert used and used <= exposed, (
            f"{path.name} uses metrics nobody exposes: {used - exposed}"
        )


def exposed_names(text: str) -> set[str]:
    from prometheus_client.parser import text_string_to_metric_families

    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.add(family.name + ("_total" if family.type == "counter" else ""))
        names.update(sample.name for sample in family.samples)
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


def test_readyz_names_the_queue_whose_consumer_is_gone(deployment):
    url = f"http://127.0.0.1:{deployment.port('web', 8000)}/readyz"
    ready = requests.get(url, headers={"Host": "web"}, timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["consumers"] == "ok"
    deployment.stop("worker-cpu")
    down = requests.get(url, headers={"Host": "web"}, timeout=30)
    assert down.status_code == 503
    assert down.json()["checks"]["consumers"] == "no consumer on queue default"
    from editplatform.monitoring.metrics import parse

    values = parse(scrape(deployment).text)
    assert values[("styleledger_queue_consumers", (("queue", "default"),))] == 0


def test_without_the_default_worker_a_lost_job_stays_lost(deployment, api_key):
    """What the old compose file did: beat still fires, nobody consumes `default`."""
    assert "worker-cpu" not in deployment.running  # stopped by the test above
    job_id = submit_losing_the_publish(deployment, api_key)
    time.sleep(20)  # ten sweep periods
    assert job_state(deployment, job_id) == "queued"
    deployment.start("worker-cpu")  # the consumer is back: the job is sent and runs
    assert (
        wait_until(
            lambda: (
                job_state(deployment, job_id) in {"succeeded", "failed"}
                and job_state(deployment, job_id)
            ),
            300,
            "the swept job",
            interval=2,
        )
        == "succeeded"
    )
