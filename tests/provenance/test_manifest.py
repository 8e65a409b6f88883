"""C2PA manifests read back correctly: ours Trusted, tampered Invalid, foreign untrusted,
absent reported as absent — in the library and in the offline verifier."""

from __future__ import annotations

import pytest
from PIL import Image

from audit import verify_output
from editplatform.provenance import ca, corpus, manifest
from tests.provenance.conftest import png_bytes

AUDIT = {"version": 1, "job_id": "00000000-0000-0000-0000-000000000001"}


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    ours = ca.generate_chain(tmp_path_factory.mktemp("ours"))
    foreign = ca.generate_chain(tmp_path_factory.mktemp("foreign"), organisation="Another CA")
    return ours, foreign


def _material(files) -> manifest.SigningMaterial:
    return manifest.SigningMaterial(files.key.read_bytes(), files.chain.read_bytes())


def _signed(files) -> bytes:
    image, original = corpus.outputs(2)
    definition = manifest.build_definition(
        title="t",
        software="StyleLedger",
        software_version="0",
        model_version="m",
        edits=[{"name": "smile", "strength": 1.0}],
        audit=AUDIT,
    )
    return manifest.sign_image(
        png_bytes(image), definition, _material(files), original=png_bytes(original)
    )


def test_our_manifest_is_trusted_with_both_actions_and_the_audit_assertion(chains):
    ours, _ = chains
    report = manifest.read_image(_signed(ours), anchors_pem=ours.root.read_bytes())
    assert report.present and report.state == "Trusted" and report.trusted, report.failures
    assert report.audit == AUDIT
    assert [a["action"] for a in report.actions] == ["c2pa.opened", "c2pa.edited"]
    assert report.actions[1]["digitalSourceType"] == manifest.SOURCE_TYPE
    assert report.actions[1]["parameters"]["edits"] == [{"name": "smile", "strength": 1.0}]


def test_tampered_pixels_are_reported_invalid(chains):
    ours, _ = chains
    signed = bytearray(_signed(ours))
    at = signed.rfind(b"IDAT") + 200
    signed[at] ^= 0xFF
    report = manifest.read_image(bytes(signed), anchors_pem=ours.root.read_bytes())
    assert report.present and report.state == "Invalid" and not report.trusted
    assert any("mismatch" in failure for failure in report.failures), report.failures


def test_tampered_assertion_is_reported_invalid(chains):
    ours, _ = chains
    signed = _signed(ours)
    forged = signed.replace(AUDIT["job_id"].encode(), b"00000000-0000-0000-0000-000000000002")
    assert forged != signed
    report = manifest.read_image(forged, anchors_pem=ours.root.read_bytes())
    assert report.present and not report.trusted and report.state != "Trusted"


def test_a_foreign_valid_manifest_is_valid_but_not_trusted(chains):
    ours, foreign = chains
    report = manifest.read_image(_signed(foreign), anchors_pem=ours.root.read_bytes())
    assert report.present and report.state == "Valid" and not report.trusted
    assert any("untrusted" in failure for failure in report.failures)


def test_an_image_without_manifest_is_reported_as_such(chains):
    ours, _ = chains
    report = manifest.read_image(
        png_bytes(Image.new("RGB", (64, 64), "white")), anchors_pem=ours.root.read_bytes()
    )
    assert not report.present and not report.trusted and report.audit is None


def test_offline_verifier_refuses_untrusted_and_missing_manifests(chains, tmp_path, capsys):
    ours, foreign = chains
    for name, data in (
        ("foreign.png", _signed(foreign)),
        ("plain.png", png_bytes(Image.new("RGB", (32, 32)))),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        code = verify_output.main(
            [str(path), "--public-key", "x+00000000+AAAA", "--trust-anchor", str(ours.root)]
        )
        assert code == 1
        assert "not Trusted" in capsys.readouterr().out
