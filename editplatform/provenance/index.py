"""Near-match search over stored fingerprints by Hamming distance.

PostgreSQL (no extension): multi-index hashing. A 256-bit hash is 16 chunks of 16 bits,
each an indexed smallint column. If two hashes differ in at most d bits, the pigeonhole
principle puts at most floor(d / 16) differing bits in at least one chunk; for d <= 31
that is 0 or 1, so probing every chunk for its own value and its 16 one-bit neighbours
(17 x 16 = 272 equality probes, OR-ed bitmap index scans) returns a superset of all
matches. PostgreSQL then measures each candidate exactly (bit_count of the XOR of four
bigint words, PostgreSQL 14+) and returns only the matches. Expected candidates per query
for random data: 272 x N / 65536 (about 4,200 at N = 1,000,000).

Elsewhere (SQLite, the embedded default) the fallback reads all hashes of the kind and
measures them in process with NumPy — linear, fine for a single machine's volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection

from editplatform.provenance.fingerprint import CHUNK_BITS, CHUNKS, WORDS, chunks, words
from editplatform.provenance.models import Fingerprint

OFFSET = 1 << (CHUNK_BITS - 1)  # chunk value -> signed smallint
MAX_INDEXED_DISTANCE = 2 * CHUNKS - 1  # radius-1 probes cover d <= 31


@dataclass(frozen=True)
class Match:
    fingerprint_id: int
    job_id: object
    marked_sha256: str
    distance: int


def chunk_columns(value: bytes) -> dict[str, int]:
    """The indexed columns of a stored hash: 16-bit chunks (c0..c15) and 64-bit words (h0..h3)."""
    columns = {f"c{i}": part - OFFSET for i, part in enumerate(chunks(value))}
    columns.update({f"h{i}": word for i, word in enumerate(words(value))})
    return columns


def _popcount_rows(values: np.ndarray, query: bytes) -> np.ndarray:
    q = np.frombuffer(query, dtype=np.uint8)
    return np.unpackbits(np.bitwise_xor(values, q), axis=1).sum(axis=1)


def _measure(rows, query: bytes, max_distance: int, limit: int) -> list[Match]:
    if not rows:
        return []
    values = np.frombuffer(b"".join(bytes(r[3]) for r in rows), dtype=np.uint8).reshape(
        len(rows), 32
    )
    distances = _popcount_rows(values, query)
    order = np.argsort(distances, kind="stable")
    return [
        Match(rows[i][0], rows[i][1], rows[i][2], int(distances[i]))
        for i in order[:limit]
        if distances[i] <= max_distance
    ]


def search(kind: str, query: bytes, max_distance: int, *, limit: int = 10) -> list[Match]:
    """Stored fingerprints of `kind` within `max_distance` bits of `query`, nearest first."""
    if len(query) != 32:
        raise ValueError("a fingerprint is 32 bytes")
    if connection.vendor == "postgresql" and max_distance <= MAX_INDEXED_DISTANCE:
        return _search_mih(kind, query, max_distance, limit)
    rows = list(
        Fingerprint.objects.filter(kind=kind).values_list("id", "job_id", "marked_sha256", "value")
    )
    return _measure(rows, query, max_distance, limit)


def _probe_values(part: int, radius: int) -> list[int]:
    values = [part]
    if radius >= 1:
        values += [part ^ (1 << bit) for bit in range(CHUNK_BITS)]
    return [v - OFFSET for v in values]


def _search_mih(kind: str, query: bytes, max_distance: int, limit: int) -> list[Match]:
    radius = max_distance // CHUNKS
    clauses, params = [], [kind]
    for i, part in enumerate(chunks(query)):
        probes = _probe_values(part, radius)
        clauses.append(f"c{i} = ANY(%s)")
        params.append(probes)
    table = Fingerprint._meta.db_table
    distance = " + ".join(f"bit_count((h{i} # %s)::bit(64))" for i in range(WORDS))
    sql = (
        f"SELECT id, job_id, marked_sha256, distance FROM ("
        f"SELECT id, job_id, marked_sha256, {distance} AS distance FROM {table} "
        f"WHERE kind = %s AND ({' OR '.join(clauses)})) AS candidates "
        f"WHERE distance <= %s ORDER BY distance, id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*words(query), *params, max_distance, limit])
        rows = cursor.fetchall()
    return [Match(row[0], row[1], row[2], int(row[3])) for row in rows]
