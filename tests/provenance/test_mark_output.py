"""`mark_output` on a real job's output: a Trusted manifest whose audit assertion is the
job's audit event, with an inclusion proof the offline verifier accepts."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from audit import signing as audit_signing
from audit import tlog, verify_output
from audit.checkpoint import open_checkpoint
from editplatform.jobs import artifacts
from editplatform.provenance import manifest, signing, watermark
from editplatform.provenance.models import Fingerprint, WatermarkKey
from editplatform.provenance.services import mark_output
from tests.jobs.helpers import logged
from tests.provenance.conftest import run_real_job, succeeded_event


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_jobs_output_is_marked_signed_and_verifiable_offline(
    worker, requester, bundle, tmp_path, dev_ca
):
    job = run_real_job(requester)
    event = succeeded_event(job)
    output = artifacts.read(job.edited)

    marked = mark_output(job, output, audit_event=event)

    # The development chain was generated lazily, once, into the configured directory.
    assert sorted(p.name for p in dev_ca.iterdir()) == ["chain.pem", "root.pem", "signer.key"]
    report = manifest.read_image(marked.data, anchors_pem=signing.trust_anchors())
    assert report.state == "Trusted", report.failures
    audit = report.audit
    assert audit == marked.manifest_info
    assert audit["job_id"] == str(job.pk) and audit["original_sha256"] == logged(job.original_id)
    assert audit["event"] == {
        "seq": event.seq,
        "action": "job.succeeded",
        "leaf_hash": bytes(event.leaf_hash).hex(),
    }
    assert audit["model_version"] == job.model_version == bundle.version
    edited = report.actions[1]["parameters"]
    assert edited["edits"] == [{"name": k, "strength": v} for k, v in sorted(job.edits.items())]
    # The named checkpoint is signed by the log's key and includes the event's leaf.
    checkpoint = open_checkpoint(audit["checkpoint"]["note"], audit_signing.get_verifier())
    assert checkpoint.size == audit["checkpoint"]["size"] > event.seq
    proof = [base64.b64decode(p) for p in audit["checkpoint"]["inclusion_proof"]]
    tlog.verify_inclusion(
        bytes(event.leaf_hash), event.seq, checkpoint.size, proof, checkpoint.root_hash
    )

    # Same pixels size, the key and both fingerprints recorded against the job.
    image = Image.open(io.BytesIO(marked.data))
    assert image.size == Image.open(io.BytesIO(output)).size
    assert WatermarkKey.objects.get(key=marked.watermark_key).job_id == job.pk
    assert set(Fingerprint.objects.filter(job=job).values_list("kind", flat=True)) == {"pdq", "rot"}
    assert 0 <= marked.watermark_key < 1 << (8 * watermark.KEY_BYTES)

    # Offline: no database, the log's public key and the operator's root only.
    path = tmp_path / "released.png"
    path.write_bytes(marked.data)
    vkey = audit_signing.get_verifier().vkey()
    assert (
        verify_output.main(
            [str(path), "--public-key", vkey, "--trust-anchor", str(dev_ca / "root.pem")]
        )
        == 0
    )
    # A different log key refuses the checkpoint.
    from audit.checkpoint import Signer

    other = Signer.generate(audit_signing.origin())
    assert (
        verify_output.main(
            [
                str(path),
                "--public-key",
                other.verifier.vkey(),
                "--trust-anchor",
                str(dev_ca / "root.pem"),
            ]
        )
        == 1
    )
