"""`manage.py provenance bench|robustness|sign-bench`: the measurements docs/ records.

manage.py provenance bench --rows 1000000 --queries 200
    fill the fingerprint index with random hashes (kind 'pdq', no job) and time
    near-match lookups (half near a stored hash, half random); prints p50/p95/max.
    Times the lookup as shipped (covering indexes, prepared statement) and planned on
    every call; `--cleanup` deletes the benchmark rows afterwards; `--legacy` also times,
    on the same rows and queries, the first version's plan (OR-ed bitmap scans on plain
    chunk indexes, every candidate's heap row fetched), building those indexes for the run
    and dropping them after. Bounded wrapper with a throwaway server:
    tests/provenance/bench_lookup.py.
manage.py provenance robustness --outputs 100 --unrelated 10000 [--source pipeline]
        [--unrelated-set varied|basic] [--no-attacks] [--workers 2] [--max-seconds S]
    watermark bit accuracy and lookup rates per attack, false matches (no database);
    outputs made by the job pipeline (default) or the first run's portrait crops; the
    unrelated images checked in worker processes, stopping after S seconds (the count
    reached and its binomial upper bound are reported).
manage.py provenance sign-bench --count 20
    sign and verify time per output (development chain unless C2PA_* are set).
"""

from __future__ import annotations

import io
import json
import random
import statistics
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test import override_settings

from editplatform.provenance import corpus, evaluate, index, manifest, signing
from editplatform.provenance.fingerprint import chunks, words
from editplatform.provenance.models import Fingerprint

BENCH_TAG = "bench"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Command(BaseCommand):
    help = "Provenance measurements: index lookup benchmark, robustness, sign/verify time."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        bench = sub.add_parser("bench")
        bench.add_argument("--rows", type=int, default=1_000_000)
        bench.add_argument("--queries", type=int, default=200)
        bench.add_argument("--distance", type=int, default=31)
        bench.add_argument("--cleanup", action="store_true")
        bench.add_argument("--legacy", action="store_true")
        bench.add_argument(
            "--populate-only",
            action="store_true",
            help="fill and vacuum the rows, time nothing (a later run on the same rows times)",
        )
        robust = sub.add_parser("robustness")
        robust.add_argument("--outputs", type=int, default=100)
        robust.add_argument("--unrelated", type=int, default=10_000)
        robust.add_argument("--source", choices=("pipeline", "portrait"), default="pipeline")
        robust.add_argument(
            "--unrelated-set",
            choices=("varied", "basic"),
            default="varied",
            help="varied: editplatform.provenance.unrelated (photos, faces, catalogue photos,"
            " unmarked pipeline outputs, scenes, textures); basic: the first passes' set",
        )
        robust.add_argument("--no-attacks", action="store_true", help="false matches only")
        robust.add_argument("--workers", type=int, default=1, help="processes for unrelated")
        robust.add_argument(
            "--max-seconds", type=float, default=None, help="stop the unrelated checks after"
        )
        robust.add_argument(
            "--unrelated-start", type=int, default=0, help="continue a stopped run at this index"
        )
        robust.add_argument(
            "--unrelated-sources",
            default=None,
            help="comma-separated sources of the varied set to check (default all): the"
            " others' indices are skipped, so parts add up to the same images",
        )
        robust.add_argument("--json", default=None, help="also write the figures to this file")
        signb = sub.add_parser("sign-bench")
        signb.add_argument("--count", type=int, default=20)

    def handle(self, *args, action: str, **options):
        getattr(self, "_" + action.replace("-", "_"))(**options)

    # --- index ------------------------------------------------------------------------
    def _bench(
        self,
        rows: int,
        queries: int,
        distance: int,
        cleanup: bool,
        legacy: bool,
        populate_only: bool = False,
        **_,
    ):
        if connection.vendor != "postgresql":
            raise CommandError("the index benchmark is for PostgreSQL (SQLite scans in process)")
        rng = random.Random(11)
        have = Fingerprint.objects.filter(marked_sha256=BENCH_TAG).count()
        started = time.perf_counter()
        columns = (
            ["kind", "value", "marked_sha256", "created_at"]
            + [f"c{i}" for i in range(16)]
            + [f"h{i}" for i in range(4)]
        )
        sample: list[bytes] = []
        while have < rows:
            batch = min(20_000, rows - have)
            buffer = io.StringIO()
            for _ in range(batch):
                value = rng.getrandbits(256).to_bytes(32, "big")
                if len(sample) < queries:
                    sample.append(value)
                chunks = index.chunk_columns(value)
                buffer.write(
                    "\t".join(
                        ["pdq", "\\\\x" + value.hex(), BENCH_TAG, "2026-01-01 00:00:00+00"]
                        + [str(chunks[f"c{i}"]) for i in range(16)]
                        + [str(chunks[f"h{i}"]) for i in range(4)]
                    )
                    + "\n"
                )
            buffer.seek(0)
            with transaction.atomic(), connection.cursor() as cursor:
                with cursor.copy(
                    f"COPY {Fingerprint._meta.db_table} ({', '.join(columns)}) FROM STDIN"
                ) as copy:
                    copy.write(buffer.getvalue())
            have += batch
            self.stdout.write(f"  {have} rows ({time.perf_counter() - started:.0f} s)")
        with connection.cursor() as cursor:  # sets the visibility map: index-only scans
            cursor.execute(f"VACUUM (ANALYZE) {Fingerprint._meta.db_table}")
        self.stdout.write(f"  loaded + vacuumed ({time.perf_counter() - started:.0f} s)")
        if populate_only:
            return
        if not sample:
            sample = [
                bytes(v)
                for v in Fingerprint.objects.filter(marked_sha256=BENCH_TAG).values_list(
                    "value", flat=True
                )[:queries]
            ]
        near = []
        for i in range(queries):
            if i % 2 == 0:  # a stored hash with `distance` // 2 bits flipped: must be found
                value = int.from_bytes(sample[i % len(sample)], "big")
                for bit in rng.sample(range(256), distance // 2):
                    value ^= 1 << bit
                near.append((value.to_bytes(32, "big"), True))
            else:
                near.append((rng.getrandbits(256).to_bytes(32, "big"), False))

        def planned_each_time(kind, query, radius):
            with override_settings(PROVENANCE_PREPARED_LOOKUP=False):
                return index.search(kind, query, radius)

        plans = {"covering_prepared": index.search, "covering_planned_each_time": planned_each_time}
        if legacy:
            plans["legacy"] = _legacy_search
            _legacy_indexes(create=True)
        result: dict = {"rows": Fingerprint.objects.count(), "queries": queries}
        try:
            for name, search in plans.items():
                timings, found = [], 0
                for query, must in near:
                    t0 = time.perf_counter()
                    matches = search("pdq", query, distance)
                    timings.append((time.perf_counter() - t0) * 1000)
                    found += bool(matches) and must
                result[name] = {
                    "near_queries_found": f"{found}/{(queries + 1) // 2}",
                    "p50_ms": round(statistics.median(timings), 2),
                    "p95_ms": round(_percentile(timings, 0.95), 2),
                    "max_ms": round(max(timings), 2),
                }
        finally:
            if legacy:
                _legacy_indexes(create=False)
        result["distance"] = distance
        self.stdout.write(json.dumps(result))
        if cleanup:
            Fingerprint.objects.filter(marked_sha256=BENCH_TAG).delete()

    # --- robustness -----------------------------------------------------------------
    def _robustness(self, outputs: int, unrelated: int, source: str, **options):
        from django.conf import settings

        figures = evaluate.run(
            outputs,
            unrelated,
            source=source,
            cache_dir=settings.VAR_DIR / "provenance-corpus",
            progress=lambda line: (self.stdout.write(line), self.stdout.flush()),
            with_attacks=not options["no_attacks"],
            unrelated_set=options["unrelated_set"],
            workers=options["workers"],
            max_seconds=options["max_seconds"],
            unrelated_start=options["unrelated_start"],
            unrelated_sources=tuple(options["unrelated_sources"].split(","))
            if options["unrelated_sources"]
            else None,
        )
        if options["json"]:  # with the per-image rows of the unrelated run
            with open(options["json"], "w", encoding="utf-8") as out:
                out.write(json.dumps(figures.__dict__, default=str))
        shown = dict(figures.__dict__)
        shown["unrelated_report"] = {
            k: v for k, v in figures.unrelated_report.items() if k != "rows"
        }
        self.stdout.write(json.dumps(shown, indent=1, default=str))

    # --- signing --------------------------------------------------------------------
    def _sign_bench(self, count: int, **_):
        material, anchors = signing.material(), signing.trust_anchors()
        images = corpus.outputs(count + 1)
        original = _png(images[0])
        sign_ms, verify_ms, sizes = [], [], []
        for image in images[1:]:
            data = _png(image)
            definition = manifest.build_definition(
                title="bench",
                software="StyleLedger",
                software_version="0",
                model_version="bench",
                edits=[{"name": "smile", "strength": 1.0}],
                audit={"job_id": "bench"},
            )
            t0 = time.perf_counter()
            signed = manifest.sign_image(data, definition, material, original=original)
            t1 = time.perf_counter()
            report = manifest.read_image(signed, anchors_pem=anchors)
            t2 = time.perf_counter()
            if not report.trusted:
                raise CommandError(f"signed output does not read back Trusted: {report.failures}")
            sign_ms.append((t1 - t0) * 1000)
            verify_ms.append((t2 - t1) * 1000)
            sizes.append(len(signed) - len(data))
        self.stdout.write(
            json.dumps(
                {
                    "outputs": count,
                    "sign_ms_median": round(statistics.median(sign_ms), 1),
                    "sign_ms_p95": round(_percentile(sign_ms, 0.95), 1),
                    "verify_ms_median": round(statistics.median(verify_ms), 1),
                    "verify_ms_p95": round(_percentile(verify_ms, 0.95), 1),
                    "manifest_bytes_median": int(statistics.median(sizes)),
                    "tsa": bool(material.tsa_url),
                }
            )
        )


def _legacy_indexes(*, create: bool) -> None:
    """The first version's plain single-column chunk indexes (for the comparison only)."""
    table = Fingerprint._meta.db_table
    with connection.cursor() as cursor:
        for i in range(16):
            if create:
                cursor.execute(f"CREATE INDEX IF NOT EXISTS legacy_c{i} ON {table} (c{i})")
            else:
                cursor.execute(f"DROP INDEX IF EXISTS legacy_c{i}")
        if create:
            cursor.execute(f"ANALYZE {table}")


def _legacy_search(kind: str, query: bytes, max_distance: int) -> list:
    """The first version's query: OR-ed chunk probes, candidates measured on heap rows."""
    table = Fingerprint._meta.db_table
    radius = max_distance // 16
    clauses, params = [], [kind]
    for i, part in enumerate(chunks(query)):
        clauses.append(f"c{i} = ANY(%s)")
        params.append(index._probe_values(part, radius))
    distance = " + ".join(f"bit_count((h{i} # %s)::bit(64))" for i in range(4))
    sql = (
        f"SELECT id, distance FROM (SELECT id, {distance} AS distance FROM {table} "
        f"WHERE kind = %s AND ({' OR '.join(clauses)})) AS c WHERE distance <= %s "
        f"ORDER BY distance, id LIMIT 10"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*words(query), *params, max_distance])
        return cursor.fetchall()


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
