"""Near-match search over stored fingerprints by Hamming distance.

`search(kind, hash, max_distance)` is the one lookup: stored fingerprints of a kind within
`max_distance` bits, nearest first (`services.find_matching_jobs` turns an image into jobs).

PostgreSQL (no extension): multi-index hashing (Norouzi, Punjani & Fleet 2012). A 256-bit
hash is 16 chunks of 16 bits, each a smallint column. If two hashes differ in at most d
bits, the pigeonhole principle puts at most floor(d / 16) differing bits in at least one
chunk; for d <= 31 that is 0 or 1, so probing every chunk for its own value and its 16
one-bit neighbours (17 x 16 = 272 equality probes) returns a superset of all matches.
Expected candidates per query for random data: 272 x N / 65536 (about 4,200 at
N = 1,000,000).

Where the time goes: the first version OR-ed 16 bitmap index scans and fetched every
candidate's heap row (~4,000 random pages at 1M rows) to measure it: p95 72 ms. Now each
chunk has a covering partial index per kind (models.py: key the chunk, INCLUDE id and the
four 64-bit words), and the query is a UNION of 16 index-only scans, each filtering its
candidates by the exact distance (bit_count of the XOR of four bigints, PostgreSQL 14+)
inside the index; only the few matches touch the heap. A candidate costs a few bytes of a
leaf page that the probe reads anyway (a chunk value's ~15 rows sit together).
Index-only scans need the visibility map: autovacuum's insert trigger (PostgreSQL 13+)
keeps it set; rows newer than the last vacuum cost one heap visit each.

Elsewhere (SQLite, the embedded default) the fallback reads all hashes of the kind and
measures them in process with NumPy — linear, fine for a single machine's volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection

from editplatform.provenance.fingerprint import CHUNK_BITS, CHUNKS, WORDS, chunks, words
from editplatform.provenance.models import FINGERPRINT_KINDS, Fingerprint

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
    if kind not in FINGERPRINT_KINDS:  # a literal below, so the partial indexes apply
        raise ValueError(f"unknown fingerprint kind {kind!r}")
    radius = max_distance // CHUNKS
    table = Fingerprint._meta.db_table
    distance = " + ".join(f"bit_count((h{w} # %s::bigint)::bit(64))" for w in range(WORDS))
    probes, params = [], []
    for i, part in enumerate(chunks(query)):
        probes.append(
            f"SELECT id, {distance} AS distance FROM {table} "
            f"WHERE kind = '{kind}' AND c{i} = ANY(%s::smallint[]) AND {distance} <= %s::int"
        )
        params += [*words(query), _probe_values(part, radius), *words(query), max_distance]
    sql = (
        f"SELECT f.id, f.job_id, f.marked_sha256, m.distance "
        f"FROM ({' UNION '.join(probes)}) AS m JOIN {table} AS f ON f.id = m.id "
        f"ORDER BY m.distance, f.id LIMIT %s::int"
    )
    rows = _execute_prepared(sql, [*params, limit])
    return [Match(row[0], row[1], row[2], int(row[3])) for row in rows]


def _execute_prepared(sql: str, params: list) -> list[tuple]:
    """Run `sql` as a server-side prepared statement (psycopg 3), so PostgreSQL plans the
    16-branch query once per connection instead of on every lookup (planning it took
    3-7 ms, as long as running it). Django's own cursors bind parameters client-side
    (no prepared statements), hence a plain psycopg cursor on Django's connection."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg2: no server-side prepare
        psycopg = None
    if psycopg is None or not settings.PROVENANCE_PREPARED_LOOKUP:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    connection.ensure_connection()
    raw = connection.connection
    # Django turns psycopg's statement preparation off for the connection
    # (prepare_threshold None, for PgBouncer's transaction pooling); allow it for this
    # statement only. PROVENANCE_PREPARED_LOOKUP=false keeps it off behind such a pooler.
    threshold = raw.prepare_threshold
    raw.prepare_threshold = 0
    try:
        with psycopg.Cursor(raw) as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchall()
    finally:
        raw.prepare_threshold = threshold
