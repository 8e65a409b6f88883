"""The sealed format (editplatform.core.crypto): round trips, and every tampering fails.

Pure: no database, no storage (run with plain pytest).
"""

from __future__ import annotations

import io
import os

import pytest

from editplatform.core import crypto

CHUNK = crypto.CHUNK_SIZE
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK]


@pytest.fixture
def key():
    return crypto.new_data_key()


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_and_size(key, size):
    data_key, key_id = key
    plain = os.urandom(size)
    sealed = crypto.seal(plain, data_key, key_id, "a" * 64)
    assert len(sealed) == crypto.sealed_size(size)
    assert plain == crypto.unseal(sealed, data_key, key_id, "a" * 64)
    if size >= 16:
        assert plain[:16] not in sealed  # no plaintext run survives
    reader = crypto.DecryptingReader(io.BytesIO(sealed), data_key, key_id, "a" * 64)
    parts = iter(lambda: reader.read(10_000), b"")
    assert b"".join(parts) == plain  # streamed in small reads


def _fails(sealed, data_key, key_id, artifact_id="a" * 64):
    with pytest.raises(crypto.TamperedCiphertext):
        crypto.unseal(sealed, data_key, key_id, artifact_id)


def test_every_flipped_byte_region_fails(key):
    data_key, key_id = key
    plain = os.urandom(2 * crypto.CHUNK_SIZE + 100)
    sealed = crypto.seal(plain, data_key, key_id, "a" * 64)
    step = crypto.CHUNK_SIZE + crypto.TAG_BYTES
    for position in (
        5,  # key id in the header
        crypto.HEADER_BYTES - 6,  # nonce prefix
        crypto.HEADER_BYTES + 3,  # first chunk
        crypto.HEADER_BYTES + step + 7,  # second chunk
        len(sealed) - 1,  # last tag
    ):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        _fails(bytes(tampered), data_key, key_id)


def test_truncation_reordering_and_swapping_fail(key):
    data_key, key_id = key
    plain = os.urandom(3 * crypto.CHUNK_SIZE)
    sealed = crypto.seal(plain, data_key, key_id, "a" * 64)
    step = crypto.CHUNK_SIZE + crypto.TAG_BYTES
    header, body = sealed[: crypto.HEADER_BYTES], sealed[crypto.HEADER_BYTES :]
    chunks = [body[i : i + step] for i in range(0, len(body), step)]
    _fails(header + b"".join(chunks[:2]), data_key, key_id)  # last chunk dropped
    _fails(header + chunks[1] + chunks[0] + chunks[2], data_key, key_id)  # reordered
    _fails(sealed, data_key, key_id, artifact_id="b" * 64)  # another artifact's id
    other_key, _ = crypto.new_data_key()
    _fails(sealed, other_key, key_id)  # another data key
    with pytest.raises(crypto.TamperedCiphertext):
        crypto.unseal(sealed, data_key, os.urandom(16), "a" * 64)  # header names another key
    _fails(b"\x89PNG\r\n\x1a\n" + body, data_key, key_id)  # plaintext is not a sealed blob


def test_stream_raises_at_the_bad_chunk_never_returns_its_bytes(key):
    data_key, key_id = key
    plain = os.urandom(3 * crypto.CHUNK_SIZE)
    sealed = bytearray(crypto.seal(plain, data_key, key_id, "a" * 64))
    sealed[crypto.HEADER_BYTES + 2 * (crypto.CHUNK_SIZE + crypto.TAG_BYTES) + 5] ^= 0x80
    reader = crypto.DecryptingReader(io.BytesIO(bytes(sealed)), data_key, key_id, "a" * 64)
    got = reader.read(crypto.CHUNK_SIZE)
    assert got == plain[: crypto.CHUNK_SIZE]  # the first chunk authenticated
    with pytest.raises(crypto.TamperedCiphertext):
        while reader.read(crypto.CHUNK_SIZE):
            pass


def test_file_key_wrapper_binds_the_context(tmp_path):
    path = crypto.ensure_dev_kek(tmp_path / "kek")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    wrapper = crypto.FileKeyWrapper(path)
    data_key, _ = crypto.new_data_key()
    wrapped = wrapper.wrap(data_key, b"artifact:1")
    assert data_key not in wrapped
    assert wrapper.unwrap(wrapped, b"artifact:1") == data_key
    with pytest.raises(crypto.KeyUnavailable):
        wrapper.unwrap(wrapped, b"artifact:2")
    other = crypto.FileKeyWrapper(crypto.ensure_dev_kek(tmp_path / "other"))
    assert other.kek_id != wrapper.kek_id
    with pytest.raises(crypto.KeyUnavailable):
        other.unwrap(wrapped, b"artifact:1")
    (tmp_path / "short").write_bytes(b"c2hvcnQ=")
    with pytest.raises(crypto.KeyUnavailable, match="32 bytes"):
        crypto.FileKeyWrapper(tmp_path / "short")


def test_commitment_depends_on_the_key():
    first, _ = crypto.new_data_key()
    second, _ = crypto.new_data_key()
    assert crypto.commitment(first, b"photo") == crypto.commitment(first, b"photo")
    assert crypto.commitment(first, b"photo") != crypto.commitment(second, b"photo")
