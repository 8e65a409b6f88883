"""A job's latent, made by the platform's worker and downloaded from the API, edits
through the command line (`python -m inversion edit`): one latent format for both."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from editplatform.jobs import artifacts as stored_artifacts
from inversion.cli import main
from inversion.latent import LATENT_FORMAT, MEDIA_TYPE, read_latent
from tests import catalog
from tests.jobs import images
from tests.jobs.conftest import api_client, submit_via_api, wait_for_state


def _download(client, url: str) -> tuple[bytes, str, str]:
    response = client.get(url)
    assert response.status_code == 200, response
    disposition = response["Content-Disposition"]
    name = re.search(r'filename="?([^";]+)', disposition).group(1)
    return b"".join(response.streaming_content), response["Content-Type"], name


def _pixels(data: bytes | str) -> np.ndarray:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    return np.asarray(Image.open(source).convert("RGB"), dtype=np.int16)


@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_jobs_latent_downloads_and_edits_through_the_cli(
    worker, requester, bundle, model_bundle, tmp_path
):
    edits = catalog.request()
    response = submit_via_api(
        api_client(requester), images.jpeg((96, 72)), edits=catalog.request_json()
    )
    assert response.status_code == 201, response.content
    job = wait_for_state(response.json()["id"], {"succeeded", "failed"})
    assert job.state == "succeeded", job.error

    client = api_client(requester)
    artifacts = client.get(f"/api/v1/jobs/{job.pk}").json()["artifacts"]
    latent, media_type, name = _download(client, artifacts["latent"]["url"])
    assert media_type == MEDIA_TYPE and name.endswith(".safetensors")
    tensors, metadata = read_latent(latent)  # the format inversion reads and writes
    assert metadata["format"] == LATENT_FORMAT and metadata["model_version"] == bundle.version
    assert metadata["wplus_shape"] == ",".join(str(n) for n in tensors["wplus"].shape)
    path = tmp_path / name
    path.write_bytes(latent)

    # the job's edit, re-rendered by the CLI from the downloaded latent
    out = tmp_path / "edited.png"
    argv = ["edit", "--bundle", str(model_bundle), str(path), "--out", str(out), "--device", "cpu"]
    for edit, strength in edits.items():
        argv += ["--edit", f"{edit}={strength}"]
    assert main(argv) == 0
    size = bundle.generator_config.size
    cli_edit = _pixels(str(out))
    assert cli_edit.shape == (size, size, 3)
    # the stored edit as the worker rendered it (the released download carries the
    # provenance watermark, which moves pixels by design)
    job.refresh_from_db()
    job_edit = _pixels(stored_artifacts.read(job.edited))
    assert np.abs(cli_edit - job_edit).max() <= 2  # same latent, same model: same image

    # with no edits the latent renders the job's reconstruction, not the edit
    same = tmp_path / "same.png"
    assert (
        main(
            [
                "edit",
                "--bundle",
                str(model_bundle),
                str(path),
                "--out",
                str(same),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    reconstruction = _pixels(_download(client, artifacts["reconstruction"]["url"])[0])
    assert np.abs(_pixels(str(same)) - reconstruction).max() <= 2
    assert np.abs(job_edit - reconstruction).max() > 2  # the edit did change the image
