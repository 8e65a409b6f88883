"""Signed notes / checkpoints and canonical JSON (no database)."""

from __future__ import annotations

import pytest

from audit import checkpoint as cp
from audit.canonical import CanonicalJSONError, canonical_text, is_canonical


def test_go_note_vector_verifies():
    # The example in golang.org/x/mod/sumdb/note's documentation.
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    note = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
        "\n"
        "\u2014 PeterNeumann "
        "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    )
    verifier = cp.Verifier.from_vkey(vkey)
    assert verifier.vkey() == vkey
    assert cp.open_note(note, verifier).startswith("If you think")
    with pytest.raises(cp.CheckpointError):
        cp.open_note(note.replace("answer", "answers"), verifier)


def test_checkpoint_round_trip_and_rejections(tmp_path):
    signer = cp.load_signer(name="example.org/log", dev_key_path=tmp_path / "key.pem")
    again = cp.load_signer(name="example.org/log", dev_key_path=tmp_path / "key.pem")
    assert again.verifier.vkey() == signer.verifier.vkey()  # generated once, then read
    assert (tmp_path / "key.pem").stat().st_mode & 0o077 == 0
    body = cp.Checkpoint("example.org/log", 42, b"\x07" * 32)
    note = cp.sign_checkpoint(body, signer)
    assert note.startswith(
        "example.org/log\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n\u2014 "
        "example.org/log "
    )
    assert cp.open_checkpoint(note, signer.verifier, "example.org/log") == body
    # Through the exported verifier key and through a PEM file.
    assert cp.open_checkpoint(note, cp.load_verifier(signer.verifier.vkey())) == body
    pem = tmp_path / "pub.pem"
    pem.write_text(signer.verifier.pem())
    assert cp.open_checkpoint(note, cp.load_verifier(str(pem), name="example.org/log")) == body
    # Another key, an altered size, a wrong origin: rejected.
    other = cp.Signer.generate("example.org/log")
    with pytest.raises(cp.CheckpointError, match="trusted key"):
        cp.open_checkpoint(cp.sign_checkpoint(body, other), signer.verifier)
    with pytest.raises(cp.CheckpointError, match="does not verify"):
        cp.open_checkpoint(note.replace("\n42\n", "\n43\n"), signer.verifier)
    with pytest.raises(cp.CheckpointError, match="expected"):
        cp.open_checkpoint(note, signer.verifier, "elsewhere/log")
    with pytest.raises(cp.SigningKeyError):
        cp.load_signer(name="example.org/log")  # production: no key, no generation


def test_note_private_key_format(tmp_path):
    signer = cp.Signer.generate("k")
    import base64

    seed = signer.private_key.private_bytes_raw()
    text = (
        f"PRIVATE+KEY+k+{signer.verifier.key_id:08x}+" + base64.b64encode(b"\x01" + seed).decode()
    )
    loaded = cp.load_signer(name="ignored", key_text=text)
    assert loaded.verifier.vkey() == signer.verifier.vkey()


def test_canonical_json_is_rfc8785_style():
    assert (
        canonical_text({"b": 1, "a": [1.0, 0.5, 1e21, 1e-7, -0.0, "é\n"], "c": None})
        == '{"a":[1,0.5,1e+21,1e-7,0,"é\\n"],"b":1,"c":null}'
    )
    # Keys sort by UTF-16 code units (RFC 8785 3.2.3), not code points.
    assert canonical_text({"\ufb01": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb01":1}'
    assert (
        is_canonical('{"a":1}')
        and not is_canonical('{"a": 1}')
        and not is_canonical('{"b":1,"a":2}')
    )
    for bad in (float("nan"), {1: "x"}, 2**60, object(), "\ud800"):
        with pytest.raises(CanonicalJSONError):
            canonical_text({"v": bad} if not isinstance(bad, dict) else bad)
