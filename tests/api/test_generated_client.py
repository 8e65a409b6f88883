"""An integrator's path, end to end: generate a client from the served schema and use it.

The schema is fetched from a live server without credentials (as an integrator with a
new key would), `openapi-python-client` generates a Python package from it, and that
package — imported, not edited — submits a job as JSON (image in base64, edits an
object) and one as a multipart form, polls the first until a real Celery worker has
run it, downloads the edited image (bytes: a PNG whose SHA-256 is the artifact's) and
pages through the list by `next_cursor`.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.worker, pytest.mark.slow]

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PURPOSE = "Catalogue photo retouch via the generated client"


def generate_client(schema: str, workdir: Path):
    """Generate a client package from ``schema`` (JSON text) and import it."""
    package = f"styleledger_client_{uuid.uuid4().hex[:8]}"
    (workdir / "openapi.json").write_text(schema)
    (workdir / "config.yml").write_text(
        "post_hooks: []\n"
    )  # no formatter run: faster, nothing to install
    run = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(workdir / "openapi.json"),
            "--output-path",
            str(workdir / package),
            "--meta",
            "none",
            "--config",
            str(workdir / "config.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    # every jobs operation generated whole (an unsupported content type makes the generator leave a
    # response out with a warning naming the operation, as the artifact download once was)
    warned = [
        line for line in output.splitlines() if line.startswith("WARNING") and "/api/v1/" in line
    ]
    assert not [line for line in warned if "/api/v1/jobs" in line or "/api/v1/edits" in line], (
        output
    )
    sys.path.insert(0, str(workdir))
    try:
        return importlib.import_module(package), package
    finally:
        sys.path.remove(str(workdir))


@pytest.fixture
def integration_key(integration_account):
    from editplatform.accounts.services import create_api_key

    return create_api_key(
        integration_account, name="generated client", scopes=["jobs:read", "jobs:write"]
    )[1]


def test_a_generated_client_submits_polls_downloads_and_lists(
    live_server, model_bundle, celery_worker, integration_key, tmp_path
):
    from editplatform.jobs.models import EditJob
    from tests import catalog
    from tests.jobs import images

    schema = httpx.get(f"{live_server.url}/api/v1/schema?format=json", timeout=60)  # no credentials
    assert schema.status_code == 200
    generated, package = generate_client(schema.text, tmp_path)
    api = importlib.import_module(f"{package}.api.jobs")
    edits_api = importlib.import_module(f"{package}.api.edits.edits_list")
    models = importlib.import_module(f"{package}.models")
    types = importlib.import_module(f"{package}.types")
    jobs_create, jobs_retrieve, jobs_artifact, jobs_list, jobs_cancel = (
        importlib.import_module(f"{api.__name__}.{name}")
        for name in ("jobs_create", "jobs_retrieve", "jobs_artifact", "jobs_list", "jobs_cancel")
    )

    # The generator's default prefix is Bearer, which the API refuses; the documented prefix works.
    bearer = generated.AuthenticatedClient(base_url=live_server.url, token=integration_key)
    assert jobs_list.sync_detailed(client=bearer).status_code == 401
    client = generated.AuthenticatedClient(
        base_url=live_server.url,
        token=integration_key,
        prefix="Api-Key",
        timeout=httpx.Timeout(60.0),
    )

    offered = edits_api.sync(client=client)
    assert (
        isinstance(offered, models.Catalog)
        and [e.name for e in offered.edits] == catalog.catalog().names
    )
    spec = catalog.plain()
    request = {spec.name: catalog.strength(spec)}

    # submit as JSON: edits a real object, the image in base64
    body = models.JobCreateJson(
        image_base64=base64.b64encode(images.png(seed=7)).decode(),
        edits=models.JobCreateJsonEdits.from_dict(request),
        purpose=PURPOSE,
        consent=True,
    )
    created = jobs_create.sync_detailed(client=client, body=body, idempotency_key="generated-1")
    assert created.status_code == 201, created.content
    job = created.parsed
    assert isinstance(job, models.Job) and job.edits.to_dict() == request
    stored = EditJob.objects.get(pk=job.id)
    assert stored.edits == request and stored.source == "api" and stored.purpose == PURPOSE

    # submit as multipart: edits JSON text; cancelled again (the worker has one job to run)
    form = models.JobCreate(
        image=types.File(
            payload=io.BytesIO(images.jpeg(seed=8)), file_name="photo.jpg", mime_type="image/jpeg"
        ),
        edits=json.dumps(request),
        purpose=PURPOSE,
        consent=True,
    )
    second = jobs_create.sync(client=client, body=form)
    assert isinstance(second, models.Job), second
    assert isinstance(jobs_cancel.sync(client=client, job_id=second.id), models.Job)

    # poll
    deadline = time.monotonic() + 240
    while job.state.value not in ("succeeded", "failed", "cancelled", "rejected"):
        assert time.monotonic() < deadline, f"job still {job.state.value}"
        time.sleep(0.5)
        job = jobs_retrieve.sync(client=client, job_id=job.id)
        assert isinstance(job, models.Job), job
    assert job.state.value == "succeeded", (job.error_code, job.error)

    # download: bytes, a PNG, the artifact's hash
    edited = job.artifacts["edited"]
    file = jobs_artifact.sync(client=client, job_id=job.id, kind=models.JobsArtifactKind.EDITED)
    assert isinstance(file, types.File)
    data = file.payload.read()
    assert data.startswith(PNG_SIGNATURE) and hashlib.sha256(data).hexdigest() == edited.sha256
    assert len(data) == edited.size

    # list, page by page, by the cursor field
    first_page = jobs_list.sync(client=client, page_size=1)
    assert isinstance(first_page, models.PaginatedJobList)
    assert [j.id for j in first_page.results] == [second.id] and first_page.next_cursor
    last_page = jobs_list.sync(client=client, page_size=1, cursor=first_page.next_cursor)
    assert [j.id for j in last_page.results] == [job.id] and last_page.next_cursor is None
    succeeded = jobs_list.sync(client=client, state="succeeded")
    assert [j.id for j in succeeded.results] == [job.id]
